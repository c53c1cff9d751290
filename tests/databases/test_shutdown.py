"""Shutdown of a worker run in this process: from another thread, or by signals during a query."""

import signal

import pytest

from django_dbq.models import Job
from tests.conftest import wait_for
from tests.helpers import in_step, in_thread, release, row, runs

pytestmark = [pytest.mark.database, pytest.mark.django_db(transaction=True)]


def test_shutdown_from_another_thread_never_raises_in_the_caller(held_jobs):
    from django_dbq.worker import Worker

    job = Job.objects.create(name="held")
    worker = Worker("default", poll_interval=0.1)
    thread = in_thread(worker)
    wait_for(lambda: runs(job)["held"], what="the worker thread to start the job")
    worker.shutdown()
    worker.shutdown()  # a second call: the task runs in another thread, nothing raises here
    release(job)
    thread.join(60)
    assert not thread.is_alive()
    values = row(job)
    assert (values["state"], values["next_task"]) == ("READY", "tests.jobs.record_b")
    assert runs(job) == {"held": 1, "release": 1}


@pytest.mark.parametrize("mode", ["single", "threads", "async"])
def test_a_stop_asked_for_before_run_ends_run_at_once_and_claims_nothing(mode):
    # What `manage.py worker` relies on when a signal comes between its start line and
    # run(): the command's early handler calls shutdown(), and run() must honour it.
    from django_dbq.worker import Worker
    from django_dbq.worker.asyncmode import AsyncWorker
    from django_dbq.worker.threads import ThreadedWorker

    jobs = [Job.objects.create(name="chain") for _ in range(3)]
    if mode == "single":
        worker = Worker("default", poll_interval=0.1)
    else:
        kind = ThreadedWorker if mode == "threads" else AsyncWorker
        worker = kind("default", concurrency=2, poll_interval=0.1)
    worker.shutdown(signal.SIGTERM, None)
    worker.run()  # returns (a worker that ignored the request would run until the timeout)
    assert [row(job)["state"] for job in jobs] == ["NEW"] * 3
    assert [row(job)["attempts"] for job in jobs] == [0] * 3


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
        "db_sleep": ["tests.jobs.record_a", "tests.databases.test_shutdown.sleep_in_the_database"],
        "noop": ["tests.jobs.noop"],
    }
    job = Job.objects.create(name="db_sleep", workspace={"sleep": 3})
    step = "tests.databases.test_shutdown.sleep_in_the_database"
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
