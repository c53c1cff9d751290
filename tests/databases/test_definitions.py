"""Definitions where a job is made or run: JOBS changed under a running project, an invalid
JOBS at creation, and hooks that raise (a hook that raises never strands a job)."""

import pytest
from django.core.exceptions import ImproperlyConfigured
from django.test import override_settings

from django_dbq.definitions import get_definition, get_definitions
from django_dbq.exceptions import UnknownJob
from django_dbq.models import Job

pytestmark = pytest.mark.database


@pytest.mark.django_db
@override_settings(JOBS={"renamed": ["tests.jobs.noop"]})
def test_get_definition_follows_setting_changes_and_refuses_unknown_names():
    assert list(get_definitions()) == ["renamed"]
    assert get_definition("renamed").tasks == ("tests.jobs.noop",)
    with pytest.raises(UnknownJob):
        get_definition("noop")


@pytest.mark.django_db
@override_settings(JOBS={"x": "not a list"})
def test_an_invalid_jobs_setting_stops_job_creation_with_a_clear_error():
    with pytest.raises(ImproperlyConfigured, match="must be a list of task paths or a dict"):
        Job.objects.create(name="x")
    assert not Job.objects.exists()


HOOKED_BADLY = {
    "bad_pre": {"tasks": ["tests.jobs.step_one"], "pre_task_hook": "tests.jobs.raising_hook"},
    "bad_post": {
        "tasks": ["tests.jobs.step_one", "tests.jobs.step_two"],
        "post_task_hook": "tests.jobs.post_hook_fails_on_step_two",
    },
    "bad_failure": {"tasks": ["tests.jobs.raise_error"], "failure_hook": "tests.jobs.raising_hook"},
    "noop": ["tests.jobs.noop"],
}


@pytest.mark.django_db
@override_settings(JOBS=HOOKED_BADLY)
def test_a_pre_task_hook_that_raises_fails_the_job_and_the_next_job_still_runs():
    from tests.helpers import run_steps

    job = Job.objects.create(name="bad_pre", priority=1)
    after = Job.objects.create(name="noop")
    run_steps()
    job.refresh_from_db()
    assert job.state == "FAILED" and "RuntimeError: the hook broke" in job.error
    assert job.workspace == {}
    assert Job.objects.get(pk=after.pk).state == "COMPLETE"


@pytest.mark.django_db
@override_settings(JOBS=HOOKED_BADLY)
def test_a_post_task_hook_that_raises_is_logged_and_the_job_keeps_its_outcome(caplog):
    """As in django-db-queue 3.x: the hook's error does not fail the step."""
    from tests.helpers import run_steps

    job = Job.objects.create(name="bad_post")
    run_steps()
    job.refresh_from_db()
    assert job.state == "COMPLETE" and job.next_task == ""
    assert job.workspace == {"one": 1, "two": 2}  # step two's changes were saved
    assert job.errors == []
    assert f"Job id={job.pk} post_task_hook failed" in caplog.text


@pytest.mark.django_db
@override_settings(JOBS=HOOKED_BADLY)
def test_a_failure_hook_that_raises_is_noted_on_the_failed_job():
    from tests.helpers import run_steps

    job = Job.objects.create(name="bad_failure")
    after = Job.objects.create(name="noop")
    run_steps()
    job.refresh_from_db()
    assert job.state == "FAILED"
    assert job.error.startswith("ValueError: task went wrong")
    assert "The failure hook raised RuntimeError: the hook broke" in job.error
    assert Job.objects.get(pk=after.pk).state == "COMPLETE"
