"""How fast a worker takes jobs: batch sizes, ``--rate_limit`` and ``--max-jobs``."""

from __future__ import annotations

import threading
import time

from django.core.exceptions import ImproperlyConfigured

from .. import conf
from ..definitions import get_definitions
from ..timeouts import can_enforce_timeouts

# A batch is sized so that it holds about this much work (seconds).
BATCH_WINDOW = 0.1


class Pacing:
    """Sizes claims to the jobs' running time and keeps to a rate and a job limit."""

    def __init__(self, rate_limit_in_seconds: float, batch_size: int, max_jobs: int | None):
        if isinstance(rate_limit_in_seconds, bool) or not rate_limit_in_seconds >= 0:
            raise ValueError(
                f"rate_limit_in_seconds must be at least 0, not {rate_limit_in_seconds!r}."
            )
        if max_jobs is not None:
            conf.require_whole_number("max_jobs", max_jobs)
        self.rate_limit_in_seconds = rate_limit_in_seconds
        # A rate limit claims one job at a time: a batch would only wait, held here.
        self.max_batch = 1 if rate_limit_in_seconds else batch_size
        self.max_jobs = max_jobs
        self.jobs_run = 0
        self.seconds_per_job: float | None = None
        self.last_job_started = 0.0

    def batch_size(self) -> int:
        """How many jobs to claim now: one until a job's running time is known."""
        if self.seconds_per_job is None:
            return 1
        per_job = max(self.seconds_per_job, 1e-6)
        size = max(1, min(self.max_batch, int(BATCH_WINDOW / per_job)))
        # Never claim jobs that --max-jobs will not let this worker run.
        return min(size, self.max_jobs - self.jobs_run) if self.max_jobs else size

    def wait_turn(self, stop: threading.Event) -> None:
        """Wait until the rate limit lets the next job start (or ``stop`` is set)."""
        if self.rate_limit_in_seconds:
            wait = self.last_job_started + self.rate_limit_in_seconds - time.monotonic()
            if wait > 0:
                stop.wait(wait)
        self.last_job_started = time.monotonic()

    def ran_one(self, took: float) -> bool:
        """Count a job run in ``took`` seconds; True once ``max_jobs`` have run."""
        self.jobs_run += 1
        self.seconds_per_job = (
            took if self.seconds_per_job is None else 0.8 * self.seconds_per_job + 0.2 * took
        )
        return bool(self.max_jobs) and self.jobs_run >= self.max_jobs


class SharedPacing(Pacing):
    """The pacing of every slot of a threaded worker: one rate, one ``--max-jobs`` count.

    The rate limit spaces the starts of the whole process. ``--max-jobs`` counts the
    jobs of the whole process: a slot starts a job only after reserving one of the
    ``max_jobs`` starts (:meth:`reserve`), so no more than ``max_jobs`` ever start.
    """

    def __init__(self, rate_limit_in_seconds: float, batch_size: int, max_jobs: int | None):
        super().__init__(rate_limit_in_seconds, batch_size, max_jobs)
        self.lock = threading.Lock()
        self.reserved = 0

    def batch_size(self) -> int:
        with self.lock:
            return super().batch_size()

    def wait_turn(self, stop: threading.Event) -> None:
        """Wait for this slot's turn: each start takes the next free instant of the rate."""
        if not self.rate_limit_in_seconds:
            return
        with self.lock:
            start_at = max(time.monotonic(), self.last_job_started + self.rate_limit_in_seconds)
            self.last_job_started = start_at
        wait = start_at - time.monotonic()
        if wait > 0:
            stop.wait(wait)

    def reserve(self) -> bool:
        """Take one of the ``max_jobs`` starts; False once all are taken."""
        with self.lock:
            if self.max_jobs and self.reserved >= self.max_jobs:
                return False
            self.reserved += 1
            return True

    def ran_one(self, took: float) -> bool:
        with self.lock:
            return super().ran_one(took)


def refuse_unenforceable_timeouts() -> None:
    """Refuse to start where step timeouts cannot be enforced (not the main thread)."""
    if can_enforce_timeouts():
        return
    timed = sorted(
        name
        for name, definition in get_definitions().items()
        if definition.timeout or definition.step_timeouts
    )
    if timed:
        raise ImproperlyConfigured(
            f"Jobs {', '.join(timed)} have step timeouts, which only a worker running "
            "in the main thread can enforce: run Worker.run() there (manage.py worker "
            "does)."
        )
