"""Driver for our django_dbq (run with the project's virtualenv).

Usage (normally through ``bench/run.py``): ``python bench/ours.py SCENARIO '{json params}'``
with ``DATABASE_URL`` set and ``PYTHONPATH=<repo>:<repo>/bench``.
"""

from __future__ import annotations

import os
import sys
import time
from pathlib import Path

import django

ROOT = Path(__file__).resolve().parent.parent
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "bench.settings")
django.setup()

from benchkit import filler, harness, iowait  # noqa: E402
from django.conf import settings  # noqa: E402
from django.db import connection  # noqa: E402
from django.utils import timezone  # noqa: E402

from django_dbq.models import Job  # noqa: E402


class Ours:
    name = "ours"
    can_drain = True

    def __init__(self) -> None:
        self.poll_cycle = float(settings.DBQ_POLL_INTERVAL)

    def reset(self) -> None:
        filler.truncate(Job)

    def enqueue_bulk(self, n: int, kind: str) -> None:
        Job.objects.bulk_create([Job(name=kind) for _ in range(n)], batch_size=5000)

    def enqueue_one(self, kind: str) -> float:
        Job.objects.create(name=kind)
        return time.time()

    def worker(
        self, drain: bool, concurrency: int = 1, mode: str | None = None
    ) -> harness.WorkerSpec:
        argv = [sys.executable, str(ROOT / "manage.py"), "worker", "default"]
        if concurrency != 1 or mode:  # without both: the single worker, as it always ran
            argv += ["--concurrency", str(concurrency)]
        if mode:
            argv += ["--mode", mode]
        env = {
            "DJANGO_SETTINGS_MODULE": "bench.settings",
            "PYTHONPATH": f"{ROOT}:{ROOT / 'bench'}",
        }
        return harness.WorkerSpec(
            argv=argv + (["--drain"] if drain else []), env=env, cwd=str(ROOT)
        )

    def completed(self) -> int:
        return Job.objects.filter(state="COMPLETE").count()

    def backend_pids(self) -> set[int]:
        with connection.cursor() as cursor:
            cursor.execute(iowait.BACKENDS_SQL)
            return {row[0] for row in cursor.fetchall()}

    def fill_backlog(self, finished: int, queued: int) -> None:
        now = timezone.now()
        finished_changes = {
            "state": "COMPLETE",
            "next_task": "",
            "attempts": 1,
            "started_at": now,
            "finished_at": now,
        }
        filler.fill(
            Job, lambda: Job.objects.create(name="noop"), finished, queued, finished_changes
        )


if __name__ == "__main__":
    harness.main(Ours)
