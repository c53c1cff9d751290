"""The async mode as a process: many jobs in flight on few connections, timeouts, signals, kills."""

from __future__ import annotations

import signal
from io import StringIO

import pytest
from django.core.management import call_command
from django.db import connection

from django_dbq.models import Job
from tests import tasks_app
from tests.conftest import wait_for
from tests.helpers import OVERLAP, in_long_step, row, runs
from tests.models import Execution

pytestmark = [
    pytest.mark.processes,
    pytest.mark.django_line,
    pytest.mark.django_db(transaction=True),
]

ASYNC_SLEEP = "tests.async_jobs.sleep"


def async_worker(start_worker, concurrency: int, *args: str, **options):
    """``manage.py worker --mode async --concurrency N``."""
    return start_worker("--mode", "async", "--concurrency", str(concurrency), *args, **options)


# The connections to the test database other than this process's own (the worker's).
OTHER_CONNECTIONS = {
    "postgresql": "SELECT count(*) FROM pg_stat_activity "
    "WHERE datname = current_database() AND pid <> pg_backend_pid()",
    "mysql": "SELECT count(*) FROM information_schema.processlist "
    "WHERE db = DATABASE() AND id <> CONNECTION_ID()",
}


def worker_connections() -> int | None:
    """How many connections the worker holds (None on SQLite, which has no server)."""
    sql = OTHER_CONNECTIONS.get(connection.vendor)
    if sql is None:
        return None
    with connection.cursor() as cursor:
        cursor.execute(sql)
        return cursor.fetchone()[0]


def test_many_async_jobs_are_in_flight_at_once_on_a_few_connections(start_worker):
    jobs = [Job.objects.create(name="async_barrier") for _ in range(50)]
    worker = async_worker(start_worker, 50)
    # Each job waits for its release row, which comes only once all of them started.
    wait_for(
        lambda: Execution.objects.filter(step="start").count() == len(jobs),
        what="every job to start",
    )
    assert not Execution.objects.filter(step="end").exists()
    # Pools and threads, not one connection per job in flight.
    held = worker_connections()
    assert held is None or held <= 8, f"the worker holds {held} connections"
    Execution.objects.bulk_create(
        [Execution(job_id=str(job.pk), step="release", pid=0) for job in jobs]
    )
    wait_for(
        lambda: Job.objects.filter(state="COMPLETE").count() == len(jobs),
        what="every job to complete",
    )
    worker.signal(signal.SIGTERM)
    assert worker.wait() == 0


def test_sync_steps_async_steps_and_async_django_tasks_run_in_async_mode(start_worker):
    jobs = [Job.objects.create(name="async_long", workspace={"sleep": 0.1}) for _ in range(3)]
    product = tasks_app.async_multiply.enqueue(6, 7)
    too_slow = tasks_app.async_oversleep.enqueue()  # its timeout (1 s) cancels it
    worker = async_worker(start_worker, 4, "--drain", expect_tracebacks=True)
    assert worker.wait() == 0, worker.log()[-3000:]
    for job in jobs:
        assert row(job)["state"] == "COMPLETE"
        assert runs(job) == {"a": 1, "start": 1, "sleep": 1, "b": 1}
    product.refresh()
    assert product.return_value == 42
    too_slow.refresh()
    assert too_slow.errors[0].exception_class_path == "django_dbq.exceptions.StepTimeout"


def test_a_step_past_its_timeout_is_cancelled_and_retried(start_worker):
    job = Job.objects.create(name="async_timed", workspace={"sleep": 300})
    worker = async_worker(start_worker, 2)
    wait_for(lambda: row(job)["state"] == "COMPLETE", what="the retry to complete the job")
    worker.signal(signal.SIGTERM)
    assert worker.wait() == 0
    values = row(job)
    assert values["attempts"] == 2
    assert [error["type"] for error in values["errors"]] == ["StepTimeout"]
    # The first attempt's coroutine was cancelled; the second one slept no time.
    assert runs(job) == {"start": 2, "cancelled": 1, "sleep": 1, "b": 1}


def test_sigterm_lets_running_steps_finish_and_a_second_one_hands_jobs_back(start_worker):
    finishing = [Job.objects.create(name="async_long", workspace={"sleep": 2}) for _ in range(3)]
    worker = async_worker(start_worker, 3)
    wait_for(
        lambda: all(runs(job)["start"] for job in finishing),
        what="every job to be in its async step",
    )
    worker.signal(signal.SIGTERM)
    assert worker.wait() == 0
    for job in finishing:
        values = row(job)
        # The step ran to its end, its checkpoint landed, and the job was handed back.
        assert runs(job) == {"a": 1, "start": 1, "sleep": 1}
        assert (values["state"], values["next_task"]) == ("READY", "tests.jobs.record_b")
        assert values["lease_token"] is None

    # A second signal: async steps are cancelled; a sync step's thread is abandoned.
    stuck = [Job.objects.create(name="async_long", workspace={"sleep": 600}) for _ in range(3)]
    blocking = Job.objects.create(name="long_marked", workspace={"sleep": 600})
    worker = async_worker(start_worker, 4)
    wait_for(
        lambda: all(runs(job)["start"] for job in stuck) and in_long_step(blocking),
        what="every job to be in its long step",
    )
    worker.signal(signal.SIGTERM)
    wait_for(
        lambda: all(row(job)["state"] == "STOPPING" for job in [*stuck, blocking]),
        what="the heartbeat to mark the running jobs STOPPING",
    )
    worker.signal(signal.SIGTERM)
    assert worker.wait() == 0
    assert "Stopping at once (second signal)" in worker.log()
    for job, step in [*((job, ASYNC_SLEEP) for job in stuck), (blocking, OVERLAP)]:
        values = row(job)
        assert (values["state"], values["next_task"]) == ("READY", step)
        assert values["attempts"] == 0  # the interrupted attempt is given back
        assert values["lease_token"] is None
    assert all(runs(job) == {"a": 1, "start": 1} for job in stuck)
    assert runs(blocking) == {"a": 1, "start": 1}


def test_killed_process_jobs_are_rescued_and_complete_elsewhere(start_worker):
    jobs = [Job.objects.create(name="async_first", workspace={"sleep": 120}) for _ in range(3)]
    lease = {"DBQ_LEASE_SECONDS": "2"}
    worker = async_worker(start_worker, 3, env=lease)
    wait_for(lambda: all(runs(job)["start"] for job in jobs), what="every job to start")
    worker.signal(signal.SIGKILL)
    worker.wait()
    after = async_worker(start_worker, 3, env=lease)
    wait_for(
        lambda: all(row(job)["state"] == "COMPLETE" for job in jobs),
        what="the other worker to rescue and run the jobs once their leases lapsed",
    )
    after.signal(signal.SIGTERM)
    assert after.wait() == 0
    for job in jobs:
        assert row(job)["attempts"] == 2  # the lost attempt counts
        assert runs(job) == {"a": 1, "start": 2, "sleep": 1, "b": 1}


def test_max_jobs_counts_the_process_and_lets_the_last_jobs_finish(start_worker):
    jobs = [Job.objects.create(name="async_long", workspace={"sleep": 0.5}) for _ in range(5)]
    worker = async_worker(start_worker, 4, "--max-jobs", "2")
    assert worker.wait() == 0
    states = sorted(row(job)["state"] for job in jobs)
    # Two jobs ran every step; the others were never started, nor left claimed.
    assert states == ["COMPLETE", "COMPLETE", "NEW", "NEW", "NEW"]
    assert all(row(job)["lease_token"] is None for job in jobs)


def test_dry_run_names_the_event_loop_and_starts_nothing():
    job = Job.objects.create(name="noop")
    out = StringIO()
    args = ["--mode", "async", "--concurrency", "20", "--dry-run"]
    call_command("worker", *args, stdout=out, stderr=StringIO())
    assert out.getvalue().startswith('Starting job worker for queue "default" with rate limit')
    assert "with up to 20 jobs on an event loop" in out.getvalue()
    assert row(job)["state"] == "NEW"
