"""Cancelling jobs that a real ``manage.py worker`` would run, or is running."""

import pytest

from django_dbq.models import Job
from tests.conftest import wait_for
from tests.helpers import executions

pytestmark = [pytest.mark.processes, pytest.mark.django_db]


@pytest.mark.django_db(transaction=True)
def test_a_cancelled_waiting_job_never_runs(start_worker):
    cancelled = Job.objects.create(name="recorded")
    other = Job.objects.create(name="recorded")
    cancelled.cancel()
    assert start_worker("--drain").wait() == 0
    assert executions(cancelled) == []
    assert Job.objects.get(pk=cancelled.pk).state == "CANCELLED"
    assert executions(other) == ["a", "b", "c"]


@pytest.mark.django_db(transaction=True)
def test_a_running_job_sees_the_request_and_does_not_go_on_to_its_next_step(start_worker):
    job = Job.objects.create(name="cancellable")
    worker = start_worker("--drain")
    wait_for(lambda: executions(job) == ["waiting"], what="the task to start")
    assert Job.objects.get(pk=job.pk).state == "PROCESSING"
    assert job.cancel() is True
    assert worker.wait() == 0
    job.refresh_from_db()
    assert job.state == "CANCELLED"
    assert executions(job) == ["waiting"]  # record_b never ran
    assert job.workspace == {"saw_cancel": True}  # the finished step was saved
    assert job.next_task == "tests.jobs.record_b" and job.finished_at is not None
