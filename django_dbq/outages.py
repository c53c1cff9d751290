"""Living through database outages: which errors are transient, backoff, waiting."""

from __future__ import annotations

import logging
import random
import signal
import threading
import time
from collections.abc import Callable

from django.db import DatabaseError, InterfaceError, OperationalError, connections

from .interrupts import SHUTDOWN_SIGNALS

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
