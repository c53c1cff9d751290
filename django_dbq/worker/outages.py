"""Living through database outages: which errors are transient, backoff, waiting."""

from __future__ import annotations

import logging
import random
import signal
import threading
import time
from collections.abc import Callable
from typing import Any

from django.db import DatabaseError, InterfaceError, OperationalError, connections

from .shutdown import SHUTDOWN_SIGNALS

logger = logging.getLogger(__name__)

# Errors that mean "the database is unreachable or busy right now": back off and retry.
TRANSIENT_ERRORS = (OperationalError, InterfaceError)


def backoff_delay(failures: int, cap: float = 5.0) -> float:
    """Exponential backoff with jitter: 0.1 s, 0.2 s, ... up to ``cap``."""
    return random.uniform(0.5, 1.0) * min(cap, 0.1 * 2 ** min(failures, 10))


def reset_connection(
    using: str, error: Exception, failures: int, sleep: Callable[[float], object]
) -> None:
    """Log ``error``, drop the connection (the next query reconnects), back off with ``sleep``."""
    delay = backoff_delay(failures)
    logger.warning(
        "Database error (%s: %s); retrying in %.2f s", type(error).__name__, error, delay
    )
    try:
        connections[using].close()
    except DatabaseError:
        pass
    sleep(delay)


def database_went_away(job: Any, error: BaseException) -> bool:
    """Did ``error`` come from losing the database (rather than from the task's own mistake)?"""
    if not isinstance(error, OperationalError | InterfaceError):
        return False
    connection = connections[job._state.db or "default"]
    if connection.in_atomic_block:
        return False  # the caller's transaction decides (e.g. _process_job inside a TestCase)
    try:
        if connection.connection is not None and connection.is_usable():
            return False
    except Exception:
        pass
    try:
        connection.close()
    except Exception:
        logger.debug("closing a broken connection failed", exc_info=True)
    return True


def close_if_broken(using: str) -> None:
    """Close the connection if queries broke it, so the next query reconnects."""
    connection = connections[using]
    if connection.errors_occurred:
        connection.errors_occurred = False
        if not connection.in_atomic_block and not connection.is_usable():
            connection.close()


def wait_for_database(verbosity: int = 1, using: str = "default") -> bool:
    """Block until the database answers; False if SIGTERM/SIGINT came first (exit quietly)."""
    stop = threading.Event()
    in_main_thread = threading.current_thread() is threading.main_thread()
    if in_main_thread:
        previous = {sig: signal.signal(sig, lambda *_: stop.set()) for sig in SHUTDOWN_SIGNALS}
    try:
        failures = 0
        while not stop.is_set():
            try:
                connections[using].ensure_connection()
                return True
            except DatabaseError as error:
                failures += 1
                if verbosity:
                    logger.warning("Waiting for the database (%s)", str(error).strip())
                connections[using].close()
                time.sleep(backoff_delay(failures))
        return False
    finally:
        if in_main_thread:
            for sig, handler in previous.items():
                signal.signal(sig, handler)


class PersistentWrites:
    """A worker's ``persist``: retries a fenced write through outages.

    It tries until the write lands (or tells it cannot) or the lease is surely gone
    (two lease lengths). A first shutdown request does not cut this short (a
    stopping worker still saves its checkpoint); a second one leaves after one more try.
    """

    def __init__(self, using: str, lease_seconds: float, abort: threading.Event) -> None:
        self.using = using
        self.lease_seconds = lease_seconds
        self.abort = abort

    def __call__(self, write: Callable[[], bool]) -> bool:
        failures = 0
        give_up_at = time.monotonic() + self.lease_seconds * 2
        while True:
            try:
                return write()
            except TRANSIENT_ERRORS as error:
                failures += 1
                if time.monotonic() > give_up_at or (self.abort.is_set() and failures > 1):
                    logger.error("Giving up a write after %s tries: %s", failures, error)
                    return False
                reset_connection(self.using, error, failures, self.abort.wait)
