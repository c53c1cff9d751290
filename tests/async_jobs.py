"""``async def`` task functions for the async mode's tests (tests/processes/test_async_mode.py).

They record what they do in the tests' execution table (through ``sync_to_async``:
the ORM is synchronous), so the test process sees how many were in flight at once.
"""

import asyncio
import time

from asgiref.sync import sync_to_async

from tests.jobs import _record
from tests.models import Execution

record = sync_to_async(_record)


@sync_to_async
def _released(job) -> bool:
    return Execution.objects.filter(job_id=str(job.pk), step="release").exists()


async def barrier(job):
    """Records ``start``, waits (at most a minute) for the test's ``release`` row, records ``end``.

    A job's ``release`` row comes only once the test saw every job of the batch start:
    all of them were in flight at once.
    """
    await record(job, "start")
    deadline = time.monotonic() + 60
    while not await _released(job):
        if time.monotonic() > deadline:
            raise RuntimeError("never released")
        await asyncio.sleep(0.05)
    await record(job, "end")


async def sleep(job):
    """Records ``start``, then sleeps ``sleep`` seconds (cancellable), then records ``sleep``."""
    await record(job, "start")
    await asyncio.sleep(float(job.workspace.get("sleep", 0.1)))
    await record(job, "sleep")


async def quick(job):
    """A 20 ms wait: the bench's and the connection test's async job."""
    await asyncio.sleep(float(job.workspace.get("sleep", 0.02)))
    job.workspace["done"] = True


async def sleep_first_attempt(job):
    """Records ``start``; on the job's first attempt sleeps ``sleep`` seconds; records ``sleep``.

    A cancelled sleep records ``cancelled``: the coroutine really was cancelled.
    """
    await record(job, "start")
    if job.attempts == 1:
        try:
            await asyncio.sleep(float(job.workspace.get("sleep", 0.1)))
        except asyncio.CancelledError:
            await record(job, "cancelled")
            raise
    await record(job, "sleep")
