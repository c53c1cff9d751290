"""Retries: attempts per definition and globally, backoff, error history, RetryLater and
FailPermanently."""

import datetime

import pytest
from django.test import override_settings
from django.utils import timezone

from django_dbq.management.commands.worker import Worker
from django_dbq.models import Job
from tests.helpers import executions, run_steps

pytestmark = [pytest.mark.database, pytest.mark.django_db]

FLAKY = "tests.jobs.fail_until"


def jobs_with(**extra):
    """The test JOBS plus ``extra`` entries."""
    from django.conf import settings

    return {**settings.JOBS, **extra}


def test_by_default_a_job_gets_one_attempt():
    job = Job.objects.create(name="failing")
    assert job.max_attempts == 1
    run_steps()
    job.refresh_from_db()
    assert (job.state, job.attempts, len(job.errors)) == ("FAILED", 1, 1)
    assert job.workspace == {"failure_hook": "ValueError('task went wrong')"}


def test_a_failed_step_is_retried_from_that_step_and_the_failure_hook_does_not_run():
    job = Job.objects.create(name="retrying", workspace={"succeed_on": 2})
    run_steps()
    job.refresh_from_db()
    assert job.state == "COMPLETE"
    assert job.workspace["succeeded_on"] == 2
    assert executions(job) == ["a", "c"]  # the first step did not run again; no failure hook
    [error] = job.errors
    assert error["step"] == FLAKY and error["attempt"] == 1
    assert error["type"] == "RuntimeError" and error["message"] == "attempt 1 fails"
    assert "Traceback" in error["traceback"] and "attempt 1 fails" in error["traceback"]
    assert datetime.datetime.fromisoformat(error["at"])


def test_when_attempts_run_out_the_job_fails_and_the_failure_hook_runs_once():
    job = Job.objects.create(name="retrying")
    run_steps()
    job.refresh_from_db()
    assert (job.state, job.attempts) == ("FAILED", 3)
    assert [error["attempt"] for error in job.errors] == [1, 2, 3]
    assert executions(job) == ["a", "failure_hook:RuntimeError"]
    assert job.error.startswith("RuntimeError: attempt 3 fails")
    assert job.finished_at is not None and job.unique_key is None


def test_fail_permanently_stops_the_retries_at_once():
    job = Job.objects.create(name="retrying", workspace={"permanent": True})
    run_steps()
    job.refresh_from_db()
    assert job.state == "FAILED"
    assert len(job.errors) == 1 and job.errors[0]["type"] == "FailPermanently"
    assert executions(job) == ["a", "failure_hook:FailPermanently"]


@override_settings(JOBS=jobs_with(snoozy={"tasks": [FLAKY]}))
def test_retry_later_runs_the_step_again_without_using_an_attempt():
    job = Job.objects.create(name="snoozy", workspace={"snooze": True, "succeed_on": 1})
    assert job.max_attempts == 1
    run_steps()
    job.refresh_from_db()
    assert job.state == "COMPLETE"
    assert job.workspace["succeeded_on"] == 1  # the snooze gave its attempt back
    assert job.errors == [] and job.error == ""  # a snooze is not a failure
    assert job.snoozes == 1


@override_settings(
    JOBS=jobs_with(forever={"tasks": ["tests.jobs.snooze_forever"], "max_snoozes": 3})
)
def test_snoozes_past_max_snoozes_count_as_failed_attempts(caplog):
    job = Job.objects.create(name="forever", workspace={"kept": 1})
    run_steps()
    job.refresh_from_db()
    assert job.state == "FAILED"
    assert job.snoozes == 3 and job.attempts == 1
    [error] = job.errors
    assert error["type"] == "RetryLater"
    assert "snoozed 3 times already" in error["message"]
    assert job.workspace == {"kept": 1}  # what the task wrote before snoozing was dropped
    assert caplog.text.count("snoozed at step tests.jobs.snooze_forever") == 3


def test_max_snoozes_is_validated():
    from django_dbq.definitions import parse_jobs

    problems = parse_jobs({"job": {"tasks": ["a.b"], "max_snoozes": -1}})[1]
    assert [problem.check_id for problem in problems] == ["django_dbq.E005"]


def test_a_manual_retry_starts_the_snooze_count_again():
    job = Job.objects.create(name="noop", state="FAILED")
    Job.objects.filter(pk=job.pk).update(snoozes=5)
    job.retry()
    job.refresh_from_db()
    assert job.snoozes == 0


@override_settings(JOBS=jobs_with(later={"tasks": ["tests.jobs.snooze_five_minutes"]}))
def test_retry_later_with_a_delay_sets_run_after():
    job = Job.objects.create(name="later")
    before = timezone.now()
    run_steps()
    job.refresh_from_db()
    assert job.state == "READY" and job.attempts == 0
    assert before + datetime.timedelta(minutes=5) <= job.run_after
    assert job.run_after <= timezone.now() + datetime.timedelta(minutes=5)
    assert not Job.objects.to_process().exists()


@override_settings(
    JOBS=jobs_with(
        dirty={
            "tasks": ["tests.jobs.step_one", "tests.jobs.dirty_then_fail"],
            "max_attempts": 2,
            "retry_backoff": "fixed",
            "retry_delay": 0,
        }
    )
)
def test_a_retry_starts_from_the_workspace_of_the_last_checkpoint():
    job = Job.objects.create(name="dirty")
    worker = Worker()
    worker._process_job()  # step_one
    worker._process_job()  # dirty_then_fail, attempt 1: writes then fails
    job.refresh_from_db()
    assert job.state == "READY" and job.next_task == "tests.jobs.dirty_then_fail"
    assert job.workspace == {"one": 1}
    worker._process_job()
    job.refresh_from_db()
    assert job.state == "COMPLETE" and job.workspace == {"one": 1, "dirty": 2}
    assert executions(job) == ["dirty", "dirty"]


@override_settings(
    JOBS=jobs_with(
        backoff={"tasks": [FLAKY], "max_attempts": 9, "retry_delay": 100, "retry_delay_max": 150}
    )
)
def test_exponential_backoff_schedules_the_retry_with_jitter_and_a_cap():
    job = Job.objects.create(name="backoff")
    before = timezone.now()
    run_steps()
    job.refresh_from_db()
    assert job.state == "READY" and not Job.objects.to_process().exists()
    # attempt 1: between half and all of retry_delay
    assert before + datetime.timedelta(seconds=50) <= job.run_after
    assert job.run_after <= timezone.now() + datetime.timedelta(seconds=100)
    # attempt 6 would wait 100 * 2**5 s: capped at retry_delay_max
    Job.objects.filter(pk=job.pk).update(run_after=None, attempts=5)
    before = timezone.now()
    run_steps()
    job.refresh_from_db()
    assert job.attempts == 6
    assert before + datetime.timedelta(seconds=75) <= job.run_after
    assert job.run_after <= timezone.now() + datetime.timedelta(seconds=150)


@override_settings(
    JOBS=jobs_with(
        fixed={"tasks": [FLAKY], "max_attempts": 5, "retry_backoff": "fixed", "retry_delay": 600}
    )
)
def test_fixed_backoff_waits_the_configured_delay():
    job = Job.objects.create(name="fixed")
    before = timezone.now()
    run_steps()
    job.refresh_from_db()
    assert before + datetime.timedelta(seconds=600) <= job.run_after
    assert job.run_after <= timezone.now() + datetime.timedelta(seconds=600)


@override_settings(DBQ_MAX_ATTEMPTS=2, DBQ_RETRY_BACKOFF="fixed", DBQ_RETRY_DELAY=0)
def test_the_global_default_applies_to_definitions_without_their_own():
    job = Job.objects.create(name="failing")
    assert Job.objects.get(pk=job.pk).max_attempts == 2
    run_steps()
    job.refresh_from_db()
    assert (job.state, job.attempts, len(job.errors)) == ("FAILED", 2, 2)


@override_settings(
    DBQ_ERROR_HISTORY=2,
    DBQ_TRACEBACK_CHARS=60,
    JOBS=jobs_with(
        many={"tasks": [FLAKY], "max_attempts": 4, "retry_backoff": "fixed", "retry_delay": 0}
    ),
)
def test_the_error_history_is_bounded():
    job = Job.objects.create(name="many")
    run_steps()
    job.refresh_from_db()
    assert job.state == "FAILED"
    assert [error["attempt"] for error in job.errors] == [3, 4]
    assert all(0 < len(error["traceback"]) <= 60 for error in job.errors)
    assert job.errors[-1]["traceback"].rstrip().endswith("attempt 4 fails")
