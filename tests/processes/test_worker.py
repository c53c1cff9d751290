"""The worker end to end: real ``manage.py worker`` processes against the real database."""

import signal

import pytest

from django_dbq.models import Job
from tests.conftest import wait_for

pytestmark = [pytest.mark.processes, pytest.mark.django_db(transaction=True)]


def test_worker_runs_chained_tasks_through_the_workspace(start_worker):
    job = Job.objects.create(name="chain", workspace={"input": 4})
    worker = start_worker("--drain")
    assert worker.wait() == 0
    job.refresh_from_db()
    assert job.state == Job.STATES.COMPLETE
    assert job.workspace == {"input": 4, "one": 5, "two": 10, "three": 13}
    assert job.next_task == ""
    assert 'Starting job worker for queue "default"' in worker.log()


def test_idle_worker_exits_cleanly_on_sigterm(start_worker):
    worker = start_worker()
    wait_for(lambda: "Starting job worker" in worker.log(), what="the start line")
    worker.signal(signal.SIGTERM)
    assert worker.wait() == 0


def test_running_worker_picks_up_a_job_enqueued_later(start_worker):
    worker = start_worker("other")
    wait_for(lambda: "Starting job worker" in worker.log(), what="the start line")
    job = Job.objects.create(name="noop", queue_name="other")
    wait_for(lambda: Job.objects.get(pk=job.pk).state == "COMPLETE", what="the job to complete")
    worker.signal(signal.SIGTERM)
    assert worker.wait() == 0


def test_max_jobs_runs_that_many_jobs_then_exits_claiming_no_more(start_worker):
    Job.objects.bulk_create([Job(name="noop") for _ in range(5)])
    worker = start_worker("--max-jobs", "2")
    assert worker.wait() == 0
    states = sorted(Job.objects.values_list("state", flat=True))
    assert states == ["COMPLETE", "COMPLETE", "NEW", "NEW", "NEW"]
    assert not Job.objects.filter(lease_token__isnull=False).exists()
    assert "Ran 2 jobs" in worker.log()


def test_worker_keeps_running_jobs_back_to_back_under_one_claim(start_worker):
    """Every step of a job runs under the claim that started it: one attempt, one worker."""
    jobs = Job.objects.bulk_create([Job(name="recorded") for _ in range(30)])
    worker = start_worker("--drain")
    assert worker.wait() == 0
    for job in Job.objects.filter(pk__in=[job.pk for job in jobs]):
        assert job.state == "COMPLETE"
        assert job.attempts == 1
