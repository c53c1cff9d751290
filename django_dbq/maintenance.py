"""The worker's background threads: heartbeats (and STOPPING marks), rescues and schedules.

Each thread has its own database connection, so a long task in the main thread
never delays a heartbeat, and a heartbeat never interleaves with the main
thread's queries. Rescues and schedules live in a thread of their own because
they may run user code (failure hooks, creation hooks): however long that takes,
heartbeats go on.
"""

from __future__ import annotations

import logging
import random
import threading
import time

from django.db import DatabaseError, connections
from django.utils import timezone

from . import leases
from .execution import JobRun
from .models import Job, JobQuerySet
from .rescue import rescue_lapsed_jobs
from .schedule import Scheduler

logger = logging.getLogger(__name__)


class _Periodic(threading.Thread):
    """Calls ``tick()`` every ``interval`` seconds (with jitter) until stopped; never dies."""

    def __init__(self, worker, interval: float, name: str):
        super().__init__(name=name, daemon=True)
        self.worker = worker
        self.interval = interval
        self.wake = threading.Event()
        self.finished = threading.Event()

    def run(self) -> None:
        failures = 0
        try:
            while not self.finished.is_set():
                try:
                    self.tick()
                    failures = 0
                except DatabaseError as error:
                    failures += 1
                    logger.warning("%s: database error (%s); retrying", self.name, error)
                    self._close()
                except BaseException:  # user code (schedule creation hooks) must not end it
                    failures += 1
                    logger.exception("%s: tick failed", self.name)
                # Back off while the database is away, but never past two intervals:
                # heartbeats must resume as soon as it is back.
                delay = self.interval * min(2**failures, 2) if failures else self.interval
                self.wake.wait(self.next_delay(delay * random.uniform(0.8, 1.0)))
                self.wake.clear()
        finally:
            self._close()

    def _close(self) -> None:
        try:
            connections[self.worker.using].close()
        except Exception:
            logger.debug("%s: closing the connection failed", self.name, exc_info=True)

    def tick(self) -> None:
        raise NotImplementedError

    def next_delay(self, delay: float) -> float:
        """Seconds to wait before the next tick (``delay``, or sooner if something is due)."""
        return delay

    def stop(self) -> None:
        self.finished.set()
        self.wake.set()


class Heartbeat(_Periodic):
    """Renews the leases of the jobs the worker holds; marks the running job STOPPING."""

    def __init__(self, worker, lease_seconds: float):
        # Renew well before expiry: a lease survives two missed heartbeats.
        super().__init__(worker, min(max(lease_seconds / 4, 0.05), 5.0), "django_dbq-heartbeat")
        self.lease_seconds = lease_seconds
        self.marked = None

    def tick(self) -> None:
        worker = self.worker
        jobs = worker.held()
        if jobs:
            self.heartbeat(jobs)
        current = worker.current_job
        if worker.stopping and current is not None and current.fence_token != self.marked:
            mark_stopping(current, worker.using)
            self.marked = current.fence_token
        waiting = worker.take_waiting_prefetched()
        if waiting:
            self.hand_back(waiting)

    def heartbeat(self, jobs: list[Job]) -> None:
        sent_at = time.monotonic()
        expires = leases.deadline(self.lease_seconds, self.worker.using)
        tokens = {job.fence_token for job in jobs if job.fence_token is not None}
        # By primary key (always indexed) and token (so a rescued job is left alone).
        renewed = (
            Job.objects.using(self.worker.using)
            .filter(pk__in=[job.pk for job in jobs], lease_token__in=tokens)
            .filter(state__in=("PROCESSING", "STOPPING"))
            .update(lease_expires_at=expires)
        )
        logger.debug("Heartbeat: renewed %s job leases", renewed)
        if renewed == len(jobs):
            for job in jobs:  # every lease is known good: prefetched jobs may start unchecked
                job._dbq_confirmed = sent_at

    def hand_back(self, jobs: list[Job]) -> None:
        """Release prefetched jobs waiting behind a long job, so other workers can run them."""
        for position, job in enumerate(jobs):
            try:
                JobRun(job, lambda write: write()).release()
                logger.debug("Handed back prefetched job %s", job.pk)
            except DatabaseError:
                self.worker.give_back_prefetched(jobs[position:])
                raise
            except Exception:
                logger.warning("Prefetched job %s was taken back already", job.pk)


class Maintenance(_Periodic):
    """Rescues lapsed jobs of any worker; enqueues recurring jobs."""

    def __init__(self, worker, lease_seconds: float):
        super().__init__(worker, min(max(lease_seconds / 4, 0.05), 5.0), "django_dbq-maintenance")
        self.scheduler = Scheduler(worker.using)

    def tick(self) -> None:
        # Never this worker's own jobs: it is alive, and they run or wait here.
        rescue_lapsed_jobs(self.worker.using, keep=self.worker.held_tokens)
        self.scheduler.enqueue_due()

    def next_delay(self, delay: float) -> float:
        # Wake up at the next cron tick rather than up to a whole interval after it.
        due = self.scheduler.seconds_until_due()
        return delay if due is None else min(delay, max(due, 0.01))


def mark_stopping(job: Job, using: str) -> int:
    """Mark ``job`` ``STOPPING`` while the claim that set its token is current."""
    if job.fence_token is None:
        return 0  # released or finished here already; a NULL token must never match
    jobs = Job.objects.using(using).filter(pk=job.pk, lease_token=job.fence_token)
    return jobs.exclude(state__in=(*JobQuerySet.FINISHED, "STOPPING")).update(
        state="STOPPING", modified=timezone.now()
    )
