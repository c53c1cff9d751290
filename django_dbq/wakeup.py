"""Waiting for work: LISTEN/NOTIFY on PostgreSQL, polling everywhere else.

A trigger (migration 0008) notifies ``channel_name(queue)`` whenever a job of that
queue becomes runnable, inside the transaction that made it so: the worker hears
of it the moment it commits. Channel names are a hash of the queue name, so any
queue name is a safe identifier.
"""

from __future__ import annotations

import hashlib
import logging
import threading
import time
from collections.abc import Sequence

from django.db import connections

logger = logging.getLogger(__name__)

# The longest a wait blocks before looking at the shutdown flag again.
SLICE = 0.25


def channel_name(queue_name: str) -> str:
    """The NOTIFY channel of a queue (must match the trigger: 'dbq_' || md5(queue_name))."""
    return "dbq_" + hashlib.md5(queue_name.encode("utf-8"), usedforsecurity=False).hexdigest()


class Poller:
    """Waits ``timeout`` seconds, or less if ``stop`` is set."""

    def __init__(self, stop: threading.Event):
        self.stop = stop

    def wait(self, timeout: float) -> bool:
        self.stop.wait(timeout)
        return False

    def close(self) -> None:
        pass


class PostgresListener(Poller):
    """A dedicated connection LISTENing on the worker's queues; falls back to polling on errors."""

    def __init__(self, stop: threading.Event, using: str, queue_names: Sequence[str]):
        super().__init__(stop)
        self.using = using
        self.channels = [channel_name(name) for name in queue_names]
        self.connection = None
        self.retry_at = 0.0

    def _connect(self):
        import psycopg

        # Straight from psycopg, never from Django's pool: this connection is held
        # for the worker's lifetime and would use up a pool slot for good.
        params = connections[self.using].get_connection_params()
        connection = psycopg.connect(**params, autocommit=True)
        for channel in self.channels:
            connection.execute(f"LISTEN {channel}")
        return connection

    def listening(self) -> bool:
        """Make sure the LISTEN connection is up (call before looking for work).

        Notifications already received are dropped: the look for work that follows
        sees the jobs they announced, so they would only cause an empty extra look.
        """
        if self.connection is not None and not self.connection.closed:
            try:
                self.drain()
                return True
            except Exception as error:
                logger.warning("LISTEN connection lost (%s); reconnecting", error)
                self.close()
        if time.monotonic() < self.retry_at:
            return False
        try:
            self.connection = self._connect()
            return True
        except Exception as error:
            logger.warning("LISTEN connection failed (%s); polling until it is back", error)
            self.retry_at = time.monotonic() + 5.0
            self.connection = None
            return False

    def wait(self, timeout: float) -> bool:
        """Block until a notification, ``timeout``, or shutdown; True if notified."""
        deadline = time.monotonic() + timeout
        while not self.stop.is_set():
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                return False
            if self.connection is None or self.connection.closed:
                return super().wait(min(remaining, SLICE))
            try:
                if any(
                    True
                    for _ in self.connection.notifies(timeout=min(remaining, SLICE), stop_after=1)
                ):
                    self.drain()
                    return True
            except Exception as error:
                logger.warning("LISTEN connection lost (%s); polling until it is back", error)
                self.close()
        return False

    def drain(self) -> None:
        """Swallow notifications already queued: a burst of inserts costs one wake-up."""
        for _ in self.connection.notifies(timeout=0):
            pass

    def close(self) -> None:
        if self.connection is not None:
            try:
                self.connection.close()
            except Exception:
                logger.debug("closing the LISTEN connection failed", exc_info=True)
            self.connection = None
