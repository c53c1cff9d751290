"""Step timeouts: a POSIX interval timer in the worker's main thread.

The timer raises :class:`StepTimeout` inside the task. Because a task can defeat
an exception (catch it, or replace the ``SIGALRM`` handler, or re-arm the timer
for its own use), the timer also keeps the facts: once it fired, or once the step
ran past its limit, the step fails its attempt whatever the task did.
"""

from __future__ import annotations

import logging
import signal
import threading
import time
from typing import Any

from .exceptions import StepTimeout

logger = logging.getLogger(__name__)


class TimeoutUnavailable(RuntimeError):
    """A step has a timeout, but nothing here can interrupt it (not the main thread)."""


def can_enforce_timeouts() -> bool:
    """Step timeouts need ``setitimer`` and the main thread (signals go only there)."""
    return hasattr(signal, "setitimer") and threading.current_thread() is threading.main_thread()


class StepTimer:
    """Interrupts the step after ``seconds``; afterwards, :meth:`timed_out` says if it ran over."""

    def __init__(self, seconds: float | None, step: str):
        self.seconds = seconds
        self.step = step
        self.fired = False
        self.started = 0.0
        self.previous: Any = None
        self.handler = self._fire  # one bound method, so it can be recognised later

    def _fire(self, signum: int, frame: Any) -> None:
        self.fired = True
        raise self.error()

    def error(self) -> StepTimeout:
        return StepTimeout(f"{self.step} ran longer than its timeout of {self.seconds} s")

    def __enter__(self) -> StepTimer:
        if not self.seconds:
            return self
        if not can_enforce_timeouts():
            raise TimeoutUnavailable(
                f"{self.step} has a timeout of {self.seconds} s, which only a worker running "
                "in the main thread can enforce"
            )
        self.started = time.monotonic()
        self.previous = signal.signal(signal.SIGALRM, self.handler)
        signal.setitimer(signal.ITIMER_REAL, self.seconds)
        return self

    def __exit__(self, *exc_info: Any) -> None:
        if not self.seconds:
            return
        remaining = signal.setitimer(signal.ITIMER_REAL, 0)[0]
        handler = signal.signal(signal.SIGALRM, self.previous)
        if self.fired:
            return
        if handler is not self.handler:
            logger.warning(
                "%s replaced the SIGALRM handler: its timeout of %s s could not interrupt it",
                self.step,
                self.seconds,
            )
        elif not remaining:
            logger.warning(
                "%s cancelled the step timer (signal.alarm or setitimer): its timeout of %s s "
                "could not interrupt it",
                self.step,
                self.seconds,
            )

    def timed_out(self) -> bool:
        """Did the timer fire, or did the step run past its limit anyway?"""
        if not self.seconds:
            return False
        return self.fired or time.monotonic() - self.started >= self.seconds
