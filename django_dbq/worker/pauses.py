"""Which of a worker's queues it may claim from: those not paused.

The pause state is read from the database at most once per poll interval while
the worker is busy, and again after a claim that found nothing (the worker waited
since: on PostgreSQL a pause or resume wakes it through its queue's channel). A
claim therefore never costs an extra round trip under load.
"""

from __future__ import annotations

import logging
import time

from ..queues import Queue

logger = logging.getLogger(__name__)


class PausedQueues:
    """The worker's view of which of ``queue_names`` are paused on database ``using``."""

    def __init__(self, using: str, queue_names: list[str], interval: float) -> None:
        self.using = using
        self.queue_names = queue_names
        self.interval = interval
        self.paused: frozenset[str] = frozenset()
        self.read_at: float | None = None  # time.monotonic() of the last read; None: never

    def serving(self, *, woken: bool) -> list[str]:
        """The queues to claim from now, in the worker's order (raises ``DatabaseError``).

        ``woken``: the worker waited since its last claim (it found nothing), so the
        state is read again whatever its age.
        """
        if woken or self.stale():
            self.read()
        return [name for name in self.queue_names if name not in self.paused]

    def stale(self) -> bool:
        return self.read_at is None or time.monotonic() - self.read_at >= self.interval

    def read(self) -> None:
        started = time.monotonic()
        rows = Queue.objects.using(self.using).filter(
            name__in=self.queue_names, paused_at__isnull=False
        )
        paused = frozenset(rows.values_list("name", flat=True))
        self.read_at = started
        if paused != self.paused:
            if paused - self.paused:
                logger.info(
                    "Queue(s) %s paused: their jobs wait", ", ".join(sorted(paused - self.paused))
                )
            if self.paused - paused:
                logger.info("Queue(s) %s resumed", ", ".join(sorted(self.paused - paused)))
            self.paused = paused

    def is_paused(self, queue_name: str) -> bool:
        """Whether ``queue_name`` was paused at the last read (no round trip)."""
        return queue_name in self.paused
