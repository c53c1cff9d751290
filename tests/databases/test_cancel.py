"""Cancelling jobs (waiting and running) and retrying them by hand."""

import datetime

import pytest
from django.utils import timezone

from django_dbq.models import Job
from tests.helpers import executions, rescue_lapsed_jobs, run_steps

pytestmark = [pytest.mark.database, pytest.mark.django_db]


# -- cancel -----------------------------------------------------------------------


def test_cancelling_a_waiting_job_makes_it_cancelled_at_once():
    job = Job.objects.create(name="recorded", unique_key="k")
    assert job.cancel() is True
    assert job.state == "CANCELLED"
    stored = Job.objects.get(pk=job.pk)
    assert stored.state == "CANCELLED" and stored.finished_at is not None
    # The key stays on the row, free for a new job (see tests/databases/test_unique.py).
    assert stored.unique_key == "k"
    assert not Job.objects.to_process().exists()
    Job.objects.create(name="recorded", unique_key="k")


@pytest.mark.parametrize("state", ["COMPLETE", "FAILED", "CANCELLED"])
def test_cancelling_a_finished_job_changes_nothing(state):
    job = Job.objects.create(name="noop", state=state)
    assert job.cancel() is False
    stored = Job.objects.get(pk=job.pk)
    assert stored.state == state and not stored.cancel_requested


def test_cancelling_a_running_job_only_requests_it():
    job = Job.objects.create(name="noop", state="PROCESSING")
    assert not job.is_cancel_requested()
    assert job.cancel() is True
    assert job.state == "PROCESSING" and job.is_cancel_requested()


def test_a_job_that_fails_after_a_cancel_request_is_cancelled_not_retried():
    job = Job.objects.create(name="fail_after_cancel")
    run_steps()
    job.refresh_from_db()
    assert job.state == "CANCELLED"
    assert executions(job) == ["fail_then_cancelled"]


def test_a_job_released_with_a_pending_cancel_request_is_cancelled_before_any_step():
    job = Job.objects.create(name="recorded", state="READY")
    Job.objects.filter(pk=job.pk).update(cancel_requested=True)
    run_steps()
    job.refresh_from_db()
    assert job.state == "CANCELLED" and job.next_task == "tests.jobs.record_a"
    assert executions(job) == []


def test_a_rescued_job_with_a_pending_cancel_request_is_cancelled():
    job = Job.objects.create(name="recorded")
    Job.objects.filter(pk=job.pk).update(
        state="PROCESSING",
        cancel_requested=True,
        attempts=1,
        lease_expires_at=timezone.now() - datetime.timedelta(minutes=1),
    )
    assert rescue_lapsed_jobs() == 1
    run_steps()
    job.refresh_from_db()
    assert job.state == "CANCELLED"
    assert executions(job) == []


# -- retry by hand ---------------------------------------------------------------------


def failed_retrying_job():
    job = Job.objects.create(name="retrying")  # fail_until fails 3 times: FAILED at step 2
    run_steps()
    job.refresh_from_db()
    assert job.state == "FAILED" and job.next_task == "tests.jobs.fail_until"
    return job


def test_retry_runs_a_failed_job_again_from_its_failed_step():
    job = failed_retrying_job()
    Job.objects.filter(pk=job.pk).update(workspace={"succeed_on": 1})
    job.retry()
    assert (job.state, job.attempts, job.next_task) == ("READY", 0, "tests.jobs.fail_until")
    assert len(job.errors) == 3  # the history is kept
    run_steps()
    job.refresh_from_db()
    assert job.state == "COMPLETE"
    assert executions(job) == ["a", "failure_hook:RuntimeError", "c"]


def test_retry_from_a_chosen_step():
    job = failed_retrying_job()
    Job.objects.filter(pk=job.pk).update(workspace={"succeed_on": 1})
    job.retry(from_step="tests.jobs.record_a")
    assert job.next_task == "tests.jobs.record_a"
    run_steps()
    job.refresh_from_db()
    assert job.state == "COMPLETE"
    assert executions(job) == ["a", "failure_hook:RuntimeError", "a", "c"]


def test_retry_a_cancelled_job_resumes_where_it_stopped():
    job = Job.objects.create(name="recorded")
    job.cancel()
    job.retry()
    assert job.state == "READY" and not job.cancel_requested and job.finished_at is None
    run_steps()
    assert Job.objects.get(pk=job.pk).state == "COMPLETE"
    assert executions(job) == ["a", "b", "c"]


def test_retry_refuses_an_unknown_step_and_changes_nothing():
    job = failed_retrying_job()
    with pytest.raises(ValueError, match="not a step of 'retrying'"):
        job.retry(from_step="tests.jobs.noop")
    assert Job.objects.get(pk=job.pk).state == "FAILED"


@pytest.mark.parametrize("state", ["NEW", "READY", "PROCESSING", "COMPLETE"])
def test_retry_refuses_a_job_that_has_not_failed(state):
    job = Job.objects.create(name="noop", state=state)
    with pytest.raises(ValueError, match="Only FAILED or CANCELLED"):
        job.retry()
    assert Job.objects.get(pk=job.pk).state == state


def test_retry_uses_a_fresh_copy_of_the_row():
    job = failed_retrying_job()
    stale = Job.objects.get(pk=job.pk)
    Job.objects.filter(pk=job.pk).update(state="COMPLETE")
    with pytest.raises(ValueError):
        stale.retry()
    assert Job.objects.get(pk=job.pk).state == "COMPLETE"
