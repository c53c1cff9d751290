"""Task functions for ``worker --concurrency`` tests (tests/processes/test_concurrency.py).

Like the guarantee tasks, they talk to the test through the ``tests_execution`` table
(which records the pid of the process that ran each step) and wait for states, never
for a time; every wait is bounded so that a task never outlives a failed test by long.
"""

import time

from tests.guarantee_tasks import released
from tests.jobs import _record

WAIT_SECONDS = 120


def _wait_until(condition, what: str) -> None:
    deadline = time.monotonic() + WAIT_SECONDS
    while not condition():
        if time.monotonic() > deadline:
            raise RuntimeError(f"gave up waiting for {what}")
        time.sleep(0.05)


def rendezvous(job) -> None:
    """Records ``met``, then waits until ``workspace["processes"]`` processes have met.

    Only jobs running at the same time in that many processes can all return.
    """
    from tests.models import Execution

    _record(job, "met")
    wanted = job.workspace["processes"]

    def enough() -> bool:
        met = Execution.objects.filter(step="met").values_list("pid", flat=True)
        return len(set(met)) >= wanted

    _wait_until(enough, f"{wanted} processes to meet")


def hold_first_attempt(job) -> None:
    """Records ``held``; on the first attempt, waits for a ``release`` row (the test kills it)."""
    _record(job, "held")
    if job.attempts == 1:
        _wait_until(lambda: released(job), f"the test to release job {job.pk}")


def finish_once_stopping(job) -> None:
    """Records ``started``, waits until its worker marks the job ``STOPPING``, then returns."""
    from django_dbq.models import Job

    _record(job, "started")
    _wait_until(
        lambda: Job.objects.filter(pk=job.pk, state="STOPPING").exists(),
        f"job {job.pk} to be marked STOPPING",
    )
    job.workspace["finished_step"] = True
