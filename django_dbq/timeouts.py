"""Step timeouts: a POSIX interval timer in the worker's main thread.

The timer raises :class:`StepTimeout` inside the task. Because a task can defeat
an exception (catch it, or replace the ``SIGALRM`` handler, or re-arm the timer
for its own use), the timer also keeps the facts: once it fired, or once the step
ran past its limit, the step fails its attempt whatever the task did.

A thread other than the main one cannot take ``SIGALRM``. A worker thread that is
watched (:func:`watch_steps`: the threads mode's slots) runs its timed steps
uninterrupted and shows the running step's timer in its :class:`StepWatch`, where
a watchdog thread sees a step run past its limit and ends the job for the queue.

An ``async def`` step is timed inside its event loop instead (:func:`within`), which
cancels the coroutine itself.
"""

from __future__ import annotations

import asyncio
import logging
import signal
import threading
import time
from collections.abc import Awaitable, Callable
from typing import Any

from asgiref.sync import async_to_sync

from .exceptions import StepTimeout

logger = logging.getLogger(__name__)


class TimeoutUnavailable(RuntimeError):
    """A step has a timeout, but nothing here can interrupt it (not the main thread)."""


def can_enforce_timeouts() -> bool:
    """Step timeouts need ``setitimer`` and the main thread (signals go only there)."""
    return hasattr(signal, "setitimer") and threading.current_thread() is threading.main_thread()


class StepWatch:
    """Where a watched thread shows its running timed step (``timer``; None between steps)."""

    __slots__ = ("timer",)

    def __init__(self) -> None:
        self.timer: StepTimer | None = None


_watched = threading.local()


def watch_steps(watch: StepWatch) -> None:
    """From now on, this thread's timed steps run uninterrupted and show in ``watch``."""
    _watched.watch = watch


class StepTimer:
    """Interrupts the step after ``seconds``; afterwards, :meth:`timed_out` says if it ran over."""

    def __init__(self, seconds: float | None, step: str):
        self.seconds = seconds
        self.step = step
        self.fired = False
        self.started = 0.0
        self.previous: Any = None
        self.watch: StepWatch | None = None
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
            self.watch = getattr(_watched, "watch", None)
            if self.watch is None:
                raise TimeoutUnavailable(
                    f"{self.step} has a timeout of {self.seconds} s, which only a worker "
                    "running in the main thread (or the threads mode's watchdog) can enforce"
                )
            self.started = time.monotonic()
            self.watch.timer = self  # the watchdog ends the job if the step runs over
            return self
        self.started = time.monotonic()
        self.previous = signal.signal(signal.SIGALRM, self.handler)
        signal.setitimer(signal.ITIMER_REAL, self.seconds)
        return self

    def __exit__(self, *exc_info: Any) -> None:
        if not self.seconds:
            return
        if self.watch is not None:
            self.watch.timer = None
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

    def deadline(self) -> float:
        """When (``time.monotonic()``) the step runs past its limit."""
        return self.started + (self.seconds or 0)

    def timed_out(self) -> bool:
        """Did the timer fire, or did the step run past its limit anyway?"""
        if not self.seconds:
            return False
        return self.fired or time.monotonic() - self.started >= self.seconds


async def within(awaitable: Awaitable[Any], seconds: float | None, step: str) -> Any:
    """Await ``awaitable``, cancelled after ``seconds`` (None: no limit) with :class:`StepTimeout`.

    The timeout runs in the event loop, so the coroutine is really cancelled (an alarm
    would interrupt only a thread waiting for it). A ``TimeoutError`` the awaitable
    raises itself stays what it is.
    """
    if not seconds:
        return await awaitable
    scope = asyncio.timeout(seconds)
    try:
        async with scope:
            return await awaitable
    except TimeoutError:
        if not scope.expired():
            raise
        raise StepTimeout(f"{step} ran longer than its timeout of {seconds} s") from None


def run_coroutine(
    function: Callable[..., Awaitable[Any]],
    args: list,
    kwargs: dict,
    step: str,
    timeout: float | None,
) -> Any:
    """Run an ``async def`` step from synchronous code (``async_to_sync``); never leave it behind.

    ``async_to_sync`` runs the coroutine in an event loop thread while this thread waits.
    If the wait is interrupted (a second SIGTERM, the step's alarm), the coroutine is
    cancelled, so that its thread ends and the worker can exit. ``timeout`` cancels it
    inside its loop.
    """
    running: dict[str, Any] = {}

    async def guarded() -> Any:
        running["loop"], running["task"] = asyncio.get_running_loop(), asyncio.current_task()
        return await within(function(*args, **kwargs), timeout, step)

    try:
        return async_to_sync(guarded)()
    except BaseException:
        coroutine = running.get("task")
        if coroutine is not None and not coroutine.done():
            try:
                running["loop"].call_soon_threadsafe(coroutine.cancel)
            except RuntimeError:
                pass  # its loop has just closed
        raise
