"""Benchmark tasks for django_dbq: they only take a timestamp.

A job's steps are identified by their dotted path, so the 3-step chain uses
three names for the same no-op.
"""

from typing import Any

from benchkit import stamp


def noop(job: Any) -> None:
    stamp.hit()


def noop_step2(job: Any) -> None:
    stamp.hit()


def noop_step3(job: Any) -> None:
    stamp.hit()


def record_pickup(job: Any) -> None:
    stamp.record_pickup()
