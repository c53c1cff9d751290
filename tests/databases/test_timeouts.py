"""Timeouts: a step running past its limit is interrupted, counted as a failed attempt."""

import signal

import pytest
from django.test import override_settings

from django_dbq.definitions import parse_definition
from django_dbq.models import Job
from tests.helpers import executions, run_steps

pytestmark = [pytest.mark.database, pytest.mark.django_db]


def jobs_with(**extra):
    from django.conf import settings

    return {**settings.JOBS, **extra}


def test_a_step_past_its_timeout_is_interrupted_and_the_job_fails():
    handler = signal.getsignal(signal.SIGALRM)
    job = Job.objects.create(name="timed", workspace={"sleep": 60})
    run_steps()
    job.refresh_from_db()
    assert job.state == "FAILED"
    [error] = job.errors
    assert error["type"] == "StepTimeout" and "timeout of 1 s" in error["message"]
    assert error["step"] == "tests.jobs.sleep_step"
    assert executions(job) == []  # interrupted before it could record anything
    # The worker is left as it was: no alarm pending, the previous handler back.
    assert signal.getitimer(signal.ITIMER_REAL) == (0.0, 0.0)
    assert signal.getsignal(signal.SIGALRM) is handler


def test_a_step_within_its_timeout_completes():
    job = Job.objects.create(name="timed", workspace={"sleep": 0.01})
    run_steps()
    job.refresh_from_db()
    assert job.state == "COMPLETE"
    assert executions(job) == ["sleep"]


@override_settings(
    JOBS=jobs_with(
        timed_retry={
            "tasks": ["tests.jobs.sleep_step"],
            "timeout": 0.5,
            "max_attempts": 2,
            "retry_backoff": "fixed",
            "retry_delay": 0,
        }
    )
)
def test_a_timeout_is_a_failed_attempt_and_is_retried():
    job = Job.objects.create(name="timed_retry", workspace={"sleep": 60})
    run_steps()
    job.refresh_from_db()
    assert job.state == "FAILED"
    assert [(e["attempt"], e["type"]) for e in job.errors] == [
        (1, "StepTimeout"),
        (2, "StepTimeout"),
    ]


@override_settings(
    JOBS=jobs_with(
        per_step={
            "tasks": ["tests.jobs.record_a", "tests.jobs.sleep_step"],
            "timeout": 120,
            "step_timeouts": {"tests.jobs.sleep_step": 0.5},
        }
    )
)
def test_a_per_step_timeout_overrides_the_jobs_timeout():
    job = Job.objects.create(name="per_step", workspace={"sleep": 60})
    run_steps()
    job.refresh_from_db()
    assert job.state == "FAILED"
    assert (
        job.errors[0]["type"] == "StepTimeout" and job.errors[0]["step"] == "tests.jobs.sleep_step"
    )
    assert executions(job) == ["a"]


def test_step_timeouts_are_validated():
    definition = parse_definition(
        "j", {"tasks": ["a.b", "a.c"], "timeout": 9, "step_timeouts": {"a.c": 2}}
    )
    assert (definition.timeout_for("a.b"), definition.timeout_for("a.c")) == (9, 2)
    from django_dbq.definitions import DefinitionError

    for bad in ({"a.x": 2}, {"a.c": 0}, {"a.c": "2"}, ["a.c"]):
        with pytest.raises(DefinitionError) as caught:
            parse_definition("j", {"tasks": ["a.b", "a.c"], "step_timeouts": bad})
        assert caught.value.check_id == "django_dbq.E005"
