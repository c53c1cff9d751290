"""The worker loop: claim, run, checkpoint, renew leases, shut down cleanly."""

from __future__ import annotations

import logging
import os
import random
import signal
import socket
import threading
import time
import uuid
from collections.abc import Callable, Sequence
from typing import Any

from django.db import DatabaseError, InterfaceError, OperationalError, connections

from . import conf
from .claim import Claimer
from .exceptions import WorkerInterrupted
from .execution import JobLost, JobRun
from .maintenance import Maintenance
from .models import Job
from .wakeup import Poller, PostgresListener

logger = logging.getLogger(__name__)

# Errors that mean "the database is unreachable or busy right now": back off and retry.
TRANSIENT_ERRORS = (OperationalError, InterfaceError)
# A batch is sized so that it holds about this much work (seconds).
BATCH_WINDOW = 0.1


def backoff_delay(failures: int, cap: float = 5.0) -> float:
    """Exponential backoff with jitter: 0.1 s, 0.2 s, ... up to ``cap``."""
    return random.uniform(0.5, 1.0) * min(cap, 0.1 * 2 ** min(failures, 10))


class Worker:
    """Claims jobs from ``queue_name`` (a name or a list of names) and runs them.

    ``run()`` loops until shutdown (or, with ``drain``, until no runnable job is
    left); ``_process_job()`` claims one job and runs one step, synchronously.
    """

    def __init__(
        self,
        queue_name: str | Sequence[str] = "default",
        rate_limit_in_seconds: float = 0,
        *,
        drain: bool = False,
        using: str = "default",
        listen: bool | None = None,
        poll_interval: float | None = None,
        lease_seconds: float | None = None,
        batch_size: int | None = None,
    ):
        names = [queue_name] if isinstance(queue_name, str) else list(queue_name)
        if not names or any(not isinstance(n, str) or not n or len(n) > 100 for n in names):
            raise ValueError("Queue names must be non-empty strings of at most 100 characters.")
        if isinstance(rate_limit_in_seconds, bool) or not rate_limit_in_seconds >= 0:
            raise ValueError(
                f"rate_limit_in_seconds must be at least 0, not {rate_limit_in_seconds!r}."
            )
        self.queue_names = names
        self.queue_name = names[0]
        self.rate_limit_in_seconds = rate_limit_in_seconds
        self.drain = drain
        self.using = using
        self.listen = conf.get("DBQ_LISTEN") if listen is None else listen
        self.poll_interval = poll_interval or conf.get("DBQ_POLL_INTERVAL")
        self.lease_seconds = lease_seconds or conf.get("DBQ_LEASE_SECONDS")
        self.batch_size = (
            1 if rate_limit_in_seconds else batch_size or conf.get("DBQ_CLAIM_BATCH_SIZE")
        )
        self.worker_id = f"{socket.gethostname()}:{os.getpid()}:{uuid.uuid4().hex[:8]}"
        self.alive = True
        self.stopping = False
        self.current_job: Job | None = None
        self.prefetched: list[Job] = []
        self.stop_event = threading.Event()
        self.seconds_per_job: float | None = None
        self.last_job_started = 0.0
        self._claimer: Claimer | None = None
        self._signals = 0

    # -- public API ---------------------------------------------------------

    def shutdown(self, signum: int | None = None, frame: Any = None) -> None:
        """First call: finish the running step, release the rest, stop. Second: stop at once."""
        self._signals += 1
        self.alive = False
        self.stopping = True
        self.stop_event.set()
        if self._maintenance is not None:
            self._maintenance.wake.set()
        if self._signals > 1 and self.current_job is not None:
            raise WorkerInterrupted()

    _maintenance: Maintenance | None = None

    def held_tokens(self) -> list[uuid.UUID]:
        jobs = [*self.prefetched, *([self.current_job] if self.current_job else [])]
        return list({job.lease_token for job in jobs if job.lease_token is not None})

    @property
    def claimer(self) -> Claimer:
        if self._claimer is None:
            self._claimer = Claimer(
                self.using, self.queue_names, self.worker_id, self.lease_seconds
            )
        return self._claimer

    def run(self) -> None:
        """Work until shut down (or drained); installs SIGTERM/SIGINT handlers."""
        in_main_thread = threading.current_thread() is threading.main_thread()
        if in_main_thread:
            previous = {
                sig: signal.signal(sig, self.shutdown) for sig in (signal.SIGTERM, signal.SIGINT)
            }
        self._prepare_connection()
        waiter = self._make_waiter()
        self._maintenance = Maintenance(self, self.lease_seconds)
        self._maintenance.start()
        try:
            self._loop(waiter)
        except WorkerInterrupted:
            logger.warning("Stopped at once by a second signal")
        finally:
            self._release_prefetched()
            self._maintenance.stop()
            self._maintenance.join(timeout=10)
            waiter.close()
            if in_main_thread:
                for sig, handler in previous.items():
                    signal.signal(sig, handler)
            logger.info("Worker %s stopped", self.worker_id)

    def _process_job(self) -> None:
        """Claim one job and run one step of it (the django-db-queue 3.x test entry point)."""
        jobs = self.claimer.claim(1)
        if jobs:
            self.current_job = jobs[0]
            try:
                JobRun(jobs[0], self._persist).run(one_step=True)
            finally:
                self.current_job = None

    # -- the loop -------------------------------------------------------------

    def _make_waiter(self) -> Poller:
        if self.listen and connections[self.using].vendor == "postgresql":
            return PostgresListener(self.stop_event, self.using, self.queue_names)
        return Poller(self.stop_event)

    def _prepare_connection(self) -> None:
        connection = connections[self.using]
        if connection.vendor == "sqlite":
            # WAL lets readers (the maintenance thread, the web app) work beside the writer.
            with connection.cursor() as cursor:
                cursor.execute("PRAGMA journal_mode=WAL")

    def _loop(self, waiter: Poller) -> None:
        failures = 0
        while not self.stopping:
            try:
                if isinstance(waiter, PostgresListener):
                    waiter.listening()  # LISTEN before looking, so no notification falls between
                if not self.prefetched:
                    self.prefetched = self.claimer.claim(self._next_batch_size())
                failures = 0
            except TRANSIENT_ERRORS as error:
                failures += 1
                self._reset_connection(error, failures)
                continue
            if not self.prefetched:
                if self.drain:
                    return
                # Notifications cut the wait short; the poll still finds jobs whose run_after came.
                waiter.wait(self.poll_interval)
                continue
            self._pace()
            job = self.prefetched.pop(0)
            self._run(job)

    def _next_batch_size(self) -> int:
        if self.seconds_per_job is None:
            return 1
        return max(1, min(self.batch_size, int(BATCH_WINDOW / max(self.seconds_per_job, 1e-6))))

    def _pace(self) -> None:
        if self.rate_limit_in_seconds:
            wait = self.last_job_started + self.rate_limit_in_seconds - time.monotonic()
            if wait > 0:
                self.stop_event.wait(wait)
        self.last_job_started = time.monotonic()

    def _run(self, job: Job) -> None:
        started = time.monotonic()
        self.current_job = job
        try:
            JobRun(job, self._persist).run(should_stop=lambda: self.stopping)
        finally:
            self.current_job = None
        took = time.monotonic() - started
        self.seconds_per_job = (
            took if self.seconds_per_job is None else 0.8 * self.seconds_per_job + 0.2 * took
        )
        connection = connections[self.using]
        if (
            connection.errors_occurred
            and not connection.in_atomic_block
            and not connection.is_usable()
        ):
            connection.close()  # the task's own queries broke it; reconnect for the next job

    def _release_prefetched(self) -> None:
        """Hand back claimed jobs that never started, so a stop strands nothing."""
        jobs, self.prefetched = self.prefetched, []
        for job in jobs:
            try:
                JobRun(job, self._persist).release()
            except (JobLost, DatabaseError):
                logger.warning("Could not release job %s; it will be rescued", job.pk)

    # -- database outages -----------------------------------------------------

    def _reset_connection(self, error: Exception, failures: int, *, sleep=None) -> None:
        delay = backoff_delay(failures)
        logger.warning("Database unavailable (%s); retrying in %.2f s", str(error).strip(), delay)
        try:
            connections[self.using].close()
        except DatabaseError:
            pass
        (sleep or self.stop_event.wait)(delay)

    def _persist(self, write: Callable[[], bool]) -> bool:
        """Run a fenced write, retrying through outages until it lands or the lease is surely gone."""
        failures = 0
        give_up_at = time.monotonic() + self.lease_seconds * 2
        while True:
            try:
                return write()
            except TRANSIENT_ERRORS as error:
                failures += 1
                if time.monotonic() > give_up_at:
                    logger.error("Giving up a write after %s tries: %s", failures, error)
                    return False
                # Not interruptible: a stopping worker still saves its checkpoint.
                self._reset_connection(error, failures, sleep=time.sleep)
