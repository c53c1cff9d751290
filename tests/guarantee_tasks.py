"""Task functions for the guarantee tests (tests/*/test_guarantees*.py), run by real workers.

They talk to the test through the ``tests_execution`` table: a step records what it
does there, and waits for rows the test inserts ("release") before going on.
"""

import time

from django.db import connection

from tests.jobs import _record

# Bound on every wait in here: a task never outlives a failed test by long.
WAIT_SECONDS = 120


def released(job) -> bool:
    """Has the test inserted a ``release`` row for ``job``?"""
    from tests.models import Execution

    return Execution.objects.filter(job_id=str(job.pk), step="release").exists()


def _wait_until(condition, job) -> None:
    deadline = time.monotonic() + WAIT_SECONDS
    while not condition(job):
        if time.monotonic() > deadline:
            raise RuntimeError(f"the test never released job {job.pk}")
        time.sleep(0.05)


def hold(job) -> None:
    """Records ``held``, then waits until the test releases the job."""
    _record(job, "held")
    _wait_until(released, job)


def lose_connection(job) -> None:
    """First attempt: records its connection's server id, then polls until the test kills it.

    The poll is the step's own query: once the connection is gone it raises
    OperationalError inside the step. A later attempt goes straight on.
    """
    if job.attempts == 1:
        with connection.cursor() as cursor:
            if connection.vendor == "postgresql":
                cursor.execute("SELECT pg_backend_pid()")
            else:
                cursor.execute("SELECT CONNECTION_ID()")
            ident = cursor.fetchone()[0]
        _record(job, f"connection {ident}")
        _wait_until(released, job)  # never released: the kill ends this wait
    _record(job, "queried")


def batch_and_keep(job) -> None:
    """Makes this worker claim full batches and keep prefetched jobs behind a long one.

    Test knobs for the worker process it runs in: its next claim takes a whole batch
    whatever its jobs took so far, and prefetched jobs wait behind a long job for
    ``patience`` seconds instead of being handed back after one.
    """
    from django_dbq.worker import heartbeat, pacing

    pacing.BATCH_WINDOW = 3600.0
    heartbeat.PREFETCH_PATIENCE = float(job.workspace["patience"])


def note_workspace(job) -> None:
    """Keeps the workspace it started with; on its first attempt dirties it and waits (killed)."""
    job.workspace["seen"] = dict(job.workspace)
    if job.attempts == 1:
        job.workspace["dirty"] = True
        _record(job, "noted")
        _wait_until(released, job)


def _is_stopping(job) -> bool:
    from django_dbq.models import Job

    return Job.objects.filter(pk=job.pk, state="STOPPING").exists()


def query_after_stopping(job) -> None:
    """Waits until its worker is stopping (first signal seen), then sleeps in a MySQL query.

    With ``"wait_for_stop": false`` in the workspace it goes straight to the query.
    """
    _record(job, "started")
    if job.workspace.get("wait_for_stop", True):
        _wait_until(_is_stopping, job)
    _record(job, "querying")
    with connection.cursor() as cursor:
        cursor.execute("SELECT SLEEP(%s)", [job.workspace["sleep"]])
    job.workspace["slept"] = True
