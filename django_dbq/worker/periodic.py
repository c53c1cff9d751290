"""A worker's background thread: one tick every interval, never dying of an error.

Each such thread has its own database connection, so a long task in the main
thread never delays a heartbeat, and a heartbeat never interleaves with the main
thread's queries.
"""

from __future__ import annotations

import logging
import random
import threading
from typing import Any

from django.db import DatabaseError, connections

logger = logging.getLogger(__name__)


class Periodic(threading.Thread):
    """Calls ``tick()`` every ``interval`` seconds (with jitter) until stopped; never dies."""

    def __init__(self, using: str, interval: float, name: str):
        super().__init__(name=name, daemon=True)
        self.using = using
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
            connections[self.using].close()
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


def interval_for(lease_seconds: float) -> float:
    """A tick every quarter lease (0.05 to 5 s): a lease survives two missed heartbeats."""
    return min(max(lease_seconds / 4, 0.05), 5.0)


def start_threads(threads: list[Periodic], shutdown: Any) -> None:
    """Start ``threads``; a shutdown request wakes them from then on."""
    shutdown.wakes = [thread.wake for thread in threads]
    for thread in threads:
        thread.start()


def stop_threads(threads: list[Periodic], timeout: float = 10) -> None:
    """Stop ``threads`` and wait for them (each finishes its tick first)."""
    for thread in threads:
        thread.stop()
    for thread in threads:
        thread.join(timeout=timeout)
