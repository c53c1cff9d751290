"""The worker in this process: its arguments, and ``shutdown()`` called by hand (3.x suites)."""

import pytest

from django_dbq.models import Job

pytestmark = [pytest.mark.database, pytest.mark.django_db(transaction=True)]


def test_shutdown_by_hand_marks_the_current_job_stopping():
    """django-db-queue 3.x test suites call ``shutdown`` on a worker they drive by hand."""
    from django_dbq.worker import Worker

    job = Job.objects.create(name="noop")
    worker = Worker("default", 1)
    (worker.current_job,) = worker.claimer.claim(1)
    worker.shutdown(None, None)
    job.refresh_from_db()
    assert job.state == Job.STATES.STOPPING
    assert worker.alive is False


def test_shutdown_by_hand_never_marks_a_job_the_worker_does_not_hold():
    """A job with no claim has no token to fence on: marking it would strand it."""
    from django_dbq.worker import Worker

    job = Job.objects.create(name="noop")
    worker = Worker("default", 1)
    worker.current_job = job
    worker.shutdown(None, None)
    job.refresh_from_db()
    assert job.state == Job.STATES.NEW


@pytest.mark.parametrize(
    ("queue", "rate"), [("", 0), ("x" * 101, 0), ("default", -1), ("default", True)]
)
def test_worker_rejects_bad_arguments(queue, rate):
    from django_dbq.worker import Worker

    with pytest.raises(ValueError):
        Worker(queue, rate)


def test_worker_command_rejects_a_negative_rate_limit():
    from django.core.management import CommandError, call_command

    with pytest.raises(CommandError):
        call_command("worker", "--rate_limit", "-1", "--dry-run")


@pytest.mark.parametrize("value", ["0", "-3", "two"])
def test_worker_command_rejects_a_bad_max_jobs(value):
    from django.core.management import CommandError, call_command

    Job.objects.create(name="noop")
    with pytest.raises(CommandError, match="max.jobs"):
        call_command("worker", "--max-jobs", value)
    assert Job.objects.get().state == "NEW"
