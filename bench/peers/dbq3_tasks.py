"""No-op tasks for django-db-queue 3.x."""

from typing import Any

from benchkit import stamp


def noop(job: Any) -> None:
    stamp.hit()


def record_pickup(job: Any) -> None:
    stamp.record_pickup()
