"""Small helpers shared by the feature tests (in-process runs and subprocesses)."""

from __future__ import annotations

import collections
import os
import subprocess
import sys
import threading
from collections.abc import Callable

from django.db import connection

from django_dbq.engine import Claimer
from django_dbq.management.commands.worker import Worker
from django_dbq.models import Job
from tests.conftest import ROOT
from tests.models import Execution


def run_steps(queue_name: str = "default", limit: int = 50) -> int:
    """Drive ``Worker._process_job()`` (one step per call) until the queue has nothing runnable."""
    worker = Worker(queue_name)
    steps = 0
    while Job.objects.to_process(queue_name).exists():
        if steps >= limit:
            raise AssertionError(f"queue {queue_name!r} still runnable after {limit} steps")
        worker._process_job()
        steps += 1
    return steps


def executions(job: Job) -> list[str]:
    """The steps of ``job`` that ran, in order, from the tests' execution table."""
    return list(
        Execution.objects.filter(job_id=str(job.pk)).order_by("id").values_list("step", flat=True)
    )


def manage(
    *args: str, env: dict[str, str] | None = None, settings: str | None = None, timeout: float = 120
) -> subprocess.CompletedProcess:
    """Run ``manage.py`` in a subprocess against the test database."""
    environment = dict(os.environ)
    environment["DBQ_TEST_DATABASE_NAME"] = str(connection.settings_dict["NAME"])
    if settings:
        environment["DJANGO_SETTINGS_MODULE"] = settings
    environment.update(env or {})
    return subprocess.run(
        [sys.executable, str(ROOT / "manage.py"), *args],
        cwd=ROOT,
        env=environment,
        capture_output=True,
        text=True,
        timeout=timeout,
    )


def rescue_lapsed_jobs(using: str = "default", **options) -> int:
    """What a worker's maintenance thread does: rescue the lapsed jobs on ``using``."""
    return Job.objects.using(using).rescue_lapsed(**options)


def claimer(*queues: str, lease: float = 60, worker_id: str = "test-worker") -> Claimer:
    """A claimer on the default database, as a worker named ``worker_id`` would make it."""
    return Claimer(Job.objects.using("default"), queues or ("default",), worker_id, lease)


# Queue names that quoting, channel names and column widths must all survive.
STRANGE_QUEUES = [
    "quo\"te's; DROP TABLE django_dbq_job; --",
    "with spaces and\ttabs",
    "ünïcødé 队列 🚀",
    "q" * 99 + "é",  # the longest the column allows
]


# -- a job's row and the steps it ran (the fault and shutdown tests) ---------------------

SLEEP = "tests.jobs.sleep_step"
OVERLAP = "tests.jobs.overlap_step"


def runs(job: Job) -> collections.Counter:
    """How many times each step of ``job`` ran."""
    return collections.Counter(
        Execution.objects.filter(job_id=str(job.pk)).values_list("step", flat=True)
    )


def row(job: Job) -> dict:
    return Job.objects.filter(pk=job.pk).values().get()


def in_long_step(job: Job) -> bool:
    """Is a ``long_marked`` job inside its long step (started, not yet ended)?"""
    counts = runs(job)
    return in_step(job, OVERLAP) and counts["start"] > counts["end"]


def in_step(job: Job, step: str) -> bool:
    values = row(job)
    return values["state"] in ("PROCESSING", "STOPPING") and values["next_task"] == step


def state_is(job: Job, state: str) -> Callable[[], bool]:
    return lambda: row(job)["state"] == state


def release(job: Job) -> None:
    """Let a ``held`` job's step (tests.guarantee_tasks.hold) return."""
    Execution.objects.create(job_id=str(job.pk), step="release", pid=0)


# -- an in-process worker in a thread -------------------------------------------------------


def in_thread(worker: Worker) -> threading.Thread:
    """Run ``worker`` in a thread, with the timed jobs (only the main thread can time) left out."""
    from django.conf import settings
    from django.test import override_settings

    untimed = {
        name: definition
        for name, definition in settings.JOBS.items()
        if not (isinstance(definition, dict) and definition.get("timeout"))
    }

    def run() -> None:
        from django.db import connections

        try:
            with override_settings(JOBS=untimed):
                worker.run()
        finally:
            connections.close_all()  # this thread's connection, so the test database can go

    thread = threading.Thread(target=run, daemon=True)
    thread.start()
    return thread


def stop_thread(worker: Worker, thread: threading.Thread) -> None:
    worker.shutdown()
    thread.join(60)
    assert not thread.is_alive()


def most_at_once(jobs) -> int:
    """The most of ``jobs`` running at once, from their records: an ``overlapping`` job
    runs from its ``start`` to its ``end``, a ``held`` one from ``held`` to ``b``.

    Each record is written before the job's completion, and a slot is taken again only
    after a completion: the records' ids follow that order, across processes too.
    """
    ids = {str(job.pk) for job in jobs}
    running = most = 0
    for job_id, step in Execution.objects.order_by("id").values_list("job_id", "step"):
        if job_id in ids:
            running += 1 if step in ("start", "held") else -1 if step in ("end", "b") else 0
            most = max(most, running)
    return most


def all_complete(jobs) -> bool:
    """Whether every one of ``jobs`` is ``COMPLETE``."""
    unfinished = Job.objects.filter(pk__in=[job.pk for job in jobs]).exclude(state="COMPLETE")
    return not unfinished.exists()
