"""Small helpers shared by the feature tests (in-process runs and subprocesses)."""

from __future__ import annotations

import os
import subprocess
import sys

from django.db import connection

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
