"""The worker's background thread: heartbeats, STOPPING marks, rescues and schedules.

It has its own database connection, so a long task in the main thread never
delays a heartbeat, and a heartbeat never interleaves with the main thread's queries.
"""

from __future__ import annotations

import logging
import random
import threading
import uuid

from django.db import DatabaseError, connections
from django.utils import timezone

from .models import Job
from .rescue import rescue_lapsed_jobs
from .schedule import Scheduler

logger = logging.getLogger(__name__)


class Maintenance(threading.Thread):
    """Renews the leases of ``held`` claims; rescues lapsed jobs; enqueues recurring jobs."""

    def __init__(self, worker, lease_seconds: float):
        super().__init__(name="django_dbq-maintenance", daemon=True)
        self.worker = worker
        self.lease_seconds = lease_seconds
        # Renew well before expiry: a lease survives two missed heartbeats.
        self.interval = min(max(lease_seconds / 4, 0.05), 5.0)
        self.wake = threading.Event()
        self.finished = threading.Event()
        self.scheduler = Scheduler(worker.using)

    def run(self) -> None:
        failures = 0
        try:
            while not self.finished.is_set():
                try:
                    self.tick()
                    failures = 0
                except DatabaseError as error:
                    failures += 1
                    logger.warning("Maintenance: database error (%s); retrying", error)
                    connections[self.worker.using].close()
                except Exception:
                    logger.exception("Maintenance tick failed")
                delay = self.interval if not failures else min(self.interval * 2**failures, 5.0)
                self.wake.wait(delay * random.uniform(0.8, 1.0))
                self.wake.clear()
        finally:
            connections[self.worker.using].close()

    def tick(self) -> None:
        tokens = self.worker.held_tokens()
        if tokens:
            self.heartbeat(tokens)
        if self.worker.stopping and self.worker.current_job is not None:
            self.mark_stopping(self.worker.current_job.lease_token)
        rescue_lapsed_jobs(self.worker.using)
        self.scheduler.enqueue_due()

    def heartbeat(self, tokens: list[uuid.UUID]) -> None:
        expires = timezone.now() + timezone.timedelta(seconds=self.lease_seconds)
        renewed = (
            Job.objects.using(self.worker.using)
            .filter(lease_token__in=tokens, state__in=("PROCESSING", "STOPPING"))
            .update(lease_expires_at=expires)
        )
        logger.debug("Heartbeat: renewed %s job leases", renewed)

    def mark_stopping(self, token: uuid.UUID | None) -> None:
        if token is not None:
            Job.objects.using(self.worker.using).filter(
                lease_token=token, state="PROCESSING"
            ).update(state="STOPPING", modified=timezone.now())

    def stop(self) -> None:
        self.finished.set()
        self.wake.set()
