"""Benchmark tasks for django_dbq: they take a timestamp (and ``io_wait`` then waits).

A job's steps are identified by their dotted path, so the 3-step chain uses
three names for the same no-op.
"""

import asyncio
import time
from typing import Any

from benchkit import stamp
from benchkit.iowait import IO_WAIT_SECONDS


def noop(job: Any) -> None:
    stamp.hit()


def noop_step2(job: Any) -> None:
    stamp.hit()


def noop_step3(job: Any) -> None:
    stamp.hit()


def record_pickup(job: Any) -> None:
    stamp.record_pickup()


def io_wait(job: Any) -> None:
    """A job that waits without using the CPU, as a call to a remote API would."""
    stamp.hit()
    time.sleep(IO_WAIT_SECONDS)


async def io_wait_async(job: Any) -> None:
    """``io_wait`` as an ``async def`` task, for the async mode (``--mode async``)."""
    stamp.hit()
    await asyncio.sleep(IO_WAIT_SECONDS)
