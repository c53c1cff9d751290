"""Task functions of the progress tests (tests/*/test_progress.py)."""

from tests.guarantee_tasks import _wait_until, released
from tests.jobs import _record


def count_up(job) -> None:
    """Reports every one of ``total`` items, as a tight loop would."""
    total = job.workspace["total"]
    for number in range(1, total + 1):
        job.set_progress(number, total, message=f"item {number}")
    _record(job, "counted")


def report_then_hold(job) -> None:
    """First attempt: reports 3 of 10, records ``reported``, waits (killed). Later: goes on."""
    if job.attempts == 1:
        job.set_progress(3, 10, message="third")
        _record(job, "reported")
        _wait_until(released, job)
    _record(job, f"resumed at {job.progress['done']}")
    job.set_progress(10, 10, message="done")


async def count_up_async(job) -> None:
    for number in range(1, 4):
        await job.aset_progress(number, 3)
