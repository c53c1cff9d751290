"""Graceful shutdown of real ``manage.py worker`` processes: SIGTERM/SIGINT, then a second one."""

import signal

import pytest

from django_dbq.models import Job
from tests.conftest import wait_for
from tests.models import Execution
from tests.test_faults import SLEEP, in_step, row, runs, state_is

pytestmark = [pytest.mark.database, pytest.mark.django_db(transaction=True)]


def pids_of(job: Job, step: str) -> set[int]:
    return set(
        Execution.objects.filter(job_id=str(job.pk), step=step).values_list("pid", flat=True)
    )


HELD = {"DJANGO_SETTINGS_MODULE": "tests.settings_guarantees"}
HOLD = "tests.guarantee_tasks.hold"


def release(job: Job) -> None:
    """Let a ``held`` job's step (tests.guarantee_tasks.hold) return."""
    Execution.objects.create(job_id=str(job.pk), step="release", pid=0)


@pytest.fixture
def held_jobs(settings):
    from tests.settings_guarantees import GUARANTEE_JOBS

    settings.JOBS = GUARANTEE_JOBS


@pytest.mark.parametrize("signum", [signal.SIGTERM, signal.SIGINT], ids=["SIGTERM", "SIGINT"])
def test_signal_mid_task_finishes_the_step_and_another_worker_continues(
    start_worker, held_jobs, signum
):
    # The step waits for the test, not for a time: no window the test could miss.
    job = Job.objects.create(name="held")
    first = start_worker(env=HELD)
    wait_for(lambda: in_step(job, HOLD) and runs(job)["held"], what="the worker to hold the job")
    first.signal(signum)
    # While it finishes the step, the job is marked STOPPING...
    wait_for(state_is(job, "STOPPING"), what="the job to be marked STOPPING")
    release(job)
    assert first.wait() == 0
    # ...and once the step is saved, the rest is released, using no attempt.
    values = row(job)
    assert values["state"] == "READY"
    assert values["next_task"] == "tests.jobs.record_b"
    assert values["attempts"] == 0
    assert values["lease_token"] is None
    assert runs(job) == {"held": 1, "release": 1}

    second = start_worker("--drain", env=HELD)
    assert second.wait() == 0
    assert row(job)["state"] == "COMPLETE"
    assert runs(job) == {"held": 1, "release": 1, "b": 1}
    assert pids_of(job, "held") == {first.pid}
    assert pids_of(job, "b") == {second.pid}


def test_second_signal_stops_at_once_and_releases_the_interrupted_step(start_worker):
    job = Job.objects.create(name="long", workspace={"sleep": 600})
    first = start_worker()
    wait_for(lambda: in_step(job, SLEEP), what="the worker to reach the long step")
    first.signal(signal.SIGTERM)
    wait_for(state_is(job, "STOPPING"), what="the job to be marked STOPPING")
    first.signal(signal.SIGTERM)
    assert first.wait(timeout=60) == 0
    assert "Stopped at once by a second signal" in first.log()
    values = row(job)
    # The interrupted step is released to run again; the finished one is kept.
    assert values["state"] == "READY"
    assert values["next_task"] == SLEEP
    assert values["attempts"] == 0
    assert values["lease_token"] is None
    assert values["workspace"] == {"sleep": 600}
    assert runs(job) == {"a": 1}

    Job.objects.filter(pk=job.pk).update(workspace={"sleep": 0.1})
    second = start_worker("--drain")
    assert second.wait() == 0
    assert row(job)["state"] == "COMPLETE"
    assert runs(job) == {"a": 1, "sleep": 1, "b": 1}


def test_stop_releases_prefetched_jobs_that_never_started(start_worker, held_jobs):
    """A stopping worker hands back every job it claimed but did not start: none stays held."""
    Job.objects.bulk_create([Job(name="noop") for _ in range(50)])
    long = Job.objects.create(name="held", priority=-1)
    Job.objects.bulk_create([Job(name="noop", priority=-2) for _ in range(300)])
    worker = start_worker(env=HELD)
    wait_for(lambda: runs(long)["held"], what="the long job to start")
    worker.signal(signal.SIGTERM)
    wait_for(state_is(long, "STOPPING"), what="the long job to be marked STOPPING")
    release(long)
    assert worker.wait() == 0
    assert not Job.objects.filter(state__in=("PROCESSING", "STOPPING")).exists()
    assert not Job.objects.filter(lease_token__isnull=False).exists()
    waiting = Job.objects.filter(state__in=("NEW", "READY"))
    assert waiting.exists()
    assert not waiting.filter(attempts__gt=0).exists()


def test_shutdown_from_another_thread_never_raises_in_the_caller(held_jobs):
    from django_dbq.worker import Worker
    from tests.test_claim import _in_thread

    job = Job.objects.create(name="held")
    worker = Worker("default", poll_interval=0.1)
    thread = _in_thread(worker)
    wait_for(lambda: runs(job)["held"], what="the worker thread to start the job")
    worker.shutdown()
    worker.shutdown()  # a second call: the task runs in another thread, nothing raises here
    release(job)
    thread.join(60)
    assert not thread.is_alive()
    values = row(job)
    assert (values["state"], values["next_task"]) == ("READY", "tests.jobs.record_b")
    assert runs(job) == {"held": 1, "release": 1}


def test_stopping_never_outlives_its_worker(start_worker, held_jobs):
    """SIGTERM marks the job STOPPING; a SIGKILL before the step ends leaves it to be rescued."""
    job = Job.objects.create(name="held")
    # One live worker at a time: the short lease decides how soon the rescue comes.
    lease = {**HELD, "DBQ_LEASE_SECONDS": "2"}
    first = start_worker(env=lease)
    wait_for(lambda: runs(job)["held"], what="the worker to reach the long step")
    first.signal(signal.SIGTERM)
    wait_for(state_is(job, "STOPPING"), what="the job to be marked STOPPING")
    first.signal(signal.SIGKILL)
    first.wait()
    release(job)  # the rerun goes straight through
    second = start_worker(env=lease)
    wait_for(state_is(job, "COMPLETE"), what="the job to be rescued and completed")
    assert runs(job) == {"held": 2, "release": 1, "b": 1}
    assert row(job)["errors"][0]["type"] == "WorkerLost"
    second.signal(signal.SIGTERM)
    assert second.wait() == 0


def sleep_in_the_database(job):
    from django.db import connection

    with connection.cursor() as cursor:
        if connection.vendor == "postgresql":
            cursor.execute("SELECT pg_sleep(%s)", [job.workspace["sleep"]])
        elif connection.vendor == "mysql":
            cursor.execute("SELECT SLEEP(%s)", [job.workspace["sleep"]])
        else:
            import time

            time.sleep(job.workspace["sleep"])
    job.workspace["slept"] = True


def test_second_signal_during_a_database_query_releases_the_step(settings):
    """The interrupted query leaves the connection busy: the release still lands."""
    import os
    import threading

    from django.db import connection

    from django_dbq.worker import Worker

    if connection.vendor == "mysql":
        # mysqlclient blocks in C until the query returns: Python runs signal handlers
        # only then, so signals sent meanwhile take effect (as one) after the query.
        pytest.skip("a MySQL query cannot be interrupted by a signal")

    settings.JOBS = {
        "db_sleep": ["tests.jobs.record_a", "tests.test_shutdown.sleep_in_the_database"],
        "noop": ["tests.jobs.noop"],
    }
    job = Job.objects.create(name="db_sleep", workspace={"sleep": 3})
    step = "tests.test_shutdown.sleep_in_the_database"
    worker = Worker("default", drain=True)

    def interrupt() -> None:
        from django.db import connections

        try:
            wait_for(lambda: in_step(job, step), what="the database sleep to start")
        finally:
            connections.close_all()
        os.kill(os.getpid(), signal.SIGTERM)
        wait_for(lambda: worker.stopping, what="the first signal")
        os.kill(os.getpid(), signal.SIGTERM)

    helper = threading.Thread(target=interrupt)
    # Should a signal come after the worker stopped, it must not end the test run.
    previous = signal.signal(signal.SIGTERM, lambda signum, frame: None)
    try:
        helper.start()
        worker.run()  # in the main thread, where signals land
        helper.join(60)
    finally:
        signal.signal(signal.SIGTERM, previous)
    values = row(job)
    assert (values["state"], values["next_task"]) == ("READY", step)
    assert values["attempts"] == 0
    assert "slept" not in values["workspace"]
    # The worker's connection still works afterwards.
    assert Job.objects.filter(pk=job.pk).exists()
