"""The async mode's parts: thread pools, and the calls of a job run on the event loop.

A :class:`~.execution.JobRun` in the async mode awaits what it calls through
:class:`LoopCalls`: an ``async def`` step on the loop, under its timeout (which
cancels the coroutine); a synchronous step or hook in the step pool; the queue's
bookkeeping (claims, checkpoints, outcomes: the synchronous ORM) in the small
bookkeeping pool. Each pool thread keeps its own database connection, so the
worker's connections are counted by its pools, never by its concurrency.
"""

from __future__ import annotations

import asyncio
import contextlib
import contextvars
import logging
import queue
import threading
import time
from collections.abc import Awaitable, Callable
from concurrent import futures
from typing import Any

from django.db import DatabaseError, connections

from ..definitions import JobDefinition
from ..exceptions import WorkerInterrupted
from ..models import Job
from ..timeouts import StepTimer
from .execution import Calls, call_step, step_coroutine
from .outages import backoff_delay

logger = logging.getLogger(__name__)


class DaemonPool(futures.Executor):
    """A fixed number of daemon threads running what is submitted, in order.

    Daemon threads, unlike ``ThreadPoolExecutor``'s, never hold up the exit of a worker
    stopped at once while a synchronous step still runs in one of them. Each thread
    closes its database connections when the pool shuts down.
    """

    def __init__(self, size: int, name: str) -> None:
        self.queue: queue.SimpleQueue = queue.SimpleQueue()
        self.threads = [
            threading.Thread(target=self._work, name=f"{name}-{index}", daemon=True)
            for index in range(size)
        ]
        for thread in self.threads:
            thread.start()

    def submit(self, fn: Callable[..., Any], /, *args: Any, **kwargs: Any) -> futures.Future:
        future: futures.Future = futures.Future()
        self.queue.put((future, fn, args, kwargs))
        return future

    def _work(self) -> None:
        try:
            while (item := self.queue.get()) is not None:
                future, fn, args, kwargs = item
                if not future.set_running_or_notify_cancel():
                    continue
                try:
                    result = fn(*args, **kwargs)
                except StopIteration as error:
                    # An asyncio future cannot hold a StopIteration: it would never complete.
                    future.set_exception(RuntimeError(f"StopIteration: {error}"))
                except BaseException as error:  # the awaiting coroutine decides
                    future.set_exception(error)
                else:
                    future.set_result(result)
        finally:
            connections.close_all()

    def shutdown(self, wait: bool = True, *, cancel_futures: bool = False) -> None:
        for _ in self.threads:
            self.queue.put(None)
        if wait:
            for thread in self.threads:
                thread.join(timeout=10)


def closing_on_error(using: str, function: Callable[..., Any], args: tuple) -> Any:
    """(a pool thread) ``function(*args)``; a database error closes this thread's connection
    first, so that its next query reconnects."""
    try:
        return function(*args)
    except DatabaseError:
        try:
            connections[using].close()
        except DatabaseError:
            pass
        raise


async def back_off(error: Exception, failures: int, wake: asyncio.Event) -> None:
    """After a database error: wait, the longer the more failures, or until ``wake`` is set."""
    delay = backoff_delay(failures)
    logger.warning(
        "Database error (%s: %s); retrying in %.2f s", type(error).__name__, error, delay
    )
    wake.clear()  # whoever waits on it looks at everything again afterwards anyway
    with contextlib.suppress(TimeoutError):
        async with asyncio.timeout(delay):
            await wake.wait()


class LoopCalls(Calls):
    """A job run's calls in the async mode; :meth:`interrupt` cancels its running step."""

    def __init__(self, bookkeeping: DaemonPool, steps: DaemonPool) -> None:
        self.bookkeeping = bookkeeping
        self.steps = steps
        self.loop = asyncio.get_running_loop()
        self.in_step: asyncio.Task | None = None  # the job's task, while it awaits its step
        self.interrupted = False

    def io(self, function: Callable[..., Any], *args: Any) -> Awaitable[Any]:
        return self.loop.run_in_executor(self.bookkeeping, function, *args)

    def user(self, function: Callable[..., Any], *args: Any) -> Awaitable[Any]:
        return self.in_steps_pool(function, *args)

    def in_steps_pool(self, function: Callable[..., Any], *args: Any) -> Awaitable[Any]:
        # In the job's context, as asyncio.to_thread does: what the step loop set for the
        # step (the jobs it adds to its workflow, say) is seen by the synchronous code.
        context = contextvars.copy_context()
        return self.loop.run_in_executor(self.steps, context.run, function, *args)

    async def step(self, timer: StepTimer, definition: JobDefinition, job: Job, step: str) -> None:
        """Await an async step here, or a synchronous one in the step pool, under ``timer``.

        The coroutine is awaited in the job's own task (not a task of its own), so what
        it raises, even ``SystemExit``, is the step's failure and never the loop's. At
        the timeout it is cancelled; a thread cannot be, and runs on (its job's outcome
        is written all the same, and nothing it does afterwards is saved).
        """
        coroutine = step_coroutine(definition, job, step)
        if coroutine is None:
            awaitable = self.in_steps_pool(call_step, definition, job, step)
        else:
            awaitable = coroutine
        self.in_step = task = asyncio.current_task()
        timer.started = time.monotonic()  # timer.timed_out() tells a step that ran over
        scope = asyncio.timeout(timer.seconds or None)
        try:
            async with scope:
                await awaitable
        except TimeoutError:
            if not scope.expired():
                raise  # the step's own
            timer.fired = True
            if coroutine is None:
                logger.error("Job %s: %s ran over; its thread runs on", job.pk, step)
            raise timer.error() from None
        except asyncio.CancelledError:
            if not self.interrupted:
                raise
            task.uncancel()
            raise WorkerInterrupted() from None  # a second signal: the job is handed back
        finally:
            self.in_step = None

    def interrupt(self) -> None:
        """(on the loop) Stop the running step at once: a second signal.

        Between steps (the bookkeeping) nothing is cancelled: the job's next step is
        refused instead (its task scope sees the second signal).
        """
        self.interrupted = True
        if self.in_step is not None:
            self.in_step.cancel()
