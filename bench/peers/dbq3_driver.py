"""Driver for django-db-queue 3.x (run with its virtualenv's Python)."""

from __future__ import annotations

import os
import sys
import time
from pathlib import Path

import django

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "dbq3_settings")
django.setup()

from benchkit import filler, harness  # noqa: E402

from django_dbq.models import Job  # noqa: E402
from django_dbq.tasks import get_next_task_name  # noqa: E402

HERE = Path(__file__).resolve().parent


class Dbq3:
    """django-db-queue 3.x sleeps one second before each job, so it cannot drain."""

    name = "dbq3"
    can_drain = False
    poll_cycle = 1.0

    def reset(self) -> None:
        filler.truncate(Job)

    def enqueue_bulk(self, n: int, kind: str) -> None:
        # bulk_create skips Job.save(), which is where 3.x sets next_task.
        first = get_next_task_name(kind)
        Job.objects.bulk_create(
            [Job(name=kind, next_task=first, workspace={}) for _ in range(n)], batch_size=5000
        )

    def enqueue_one(self, kind: str) -> float:
        Job.objects.create(name=kind)
        return time.time()

    def worker(
        self, drain: bool, concurrency: int = 1, mode: str | None = None
    ) -> harness.WorkerSpec:
        # 3.x runs one job at a time per process; the io scenario is not run for it.
        return harness.WorkerSpec(
            argv=[sys.executable, str(HERE / "dbq3_manage.py"), "worker", "default"],
            env={"PYTHONPATH": f"{HERE}:{HERE.parent}"},
            cwd=str(HERE),
        )

    def completed(self) -> int:
        return Job.objects.filter(state="COMPLETE").count()

    def fill_backlog(self, finished: int, queued: int) -> None:
        filler.fill(
            Job,
            lambda: Job.objects.create(name="noop"),
            finished,
            queued,
            {"state": "COMPLETE", "next_task": ""},
        )


if __name__ == "__main__":
    harness.main(Dbq3)
