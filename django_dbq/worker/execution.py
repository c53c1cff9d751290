"""Running one claimed job: its steps in order, the hooks around them, and the outcome.

Each step runs under its timeout; its outcome (a checkpoint, completion, a retry, a
failure, a cancellation, a release) is written by the engine, fenced on the claim,
through ``persist`` (the worker's retrying of writes through database outages).

The step loop is written once, as a coroutine (:meth:`JobRun.work`), and awaits what it
calls through its :class:`Calls`. The default calls everything at once in this thread,
so the coroutine never suspends and :meth:`JobRun.run` runs it to its end as plain
synchronous code. The async mode (:mod:`.asyncmode`) gives it calls that await async
steps on its event loop and run the database bookkeeping in a pool of threads.
"""

from __future__ import annotations

import contextlib
import copy
import functools
import logging
from collections.abc import Awaitable, Callable, Coroutine, Generator
from inspect import iscoroutinefunction
from typing import Any

from django.db import DatabaseError

from .. import engine, fan_out, signals, tracing
from ..definitions import JobDefinition, get_definition, load
from ..exceptions import (
    JobLost,
    StepTimeout,
    UnknownJob,
    WorkerInterrupted,
)
from ..models import Job
from ..states import State
from ..timeouts import StepTimer, run_coroutine
from .job_log import job_log, log_processing, log_updated
from .outages import database_went_away
from .outcomes import Cancelled, Outcomes

__all__ = ["Calls", "JobLost", "JobRun", "call_step", "step_coroutine"]

logger = logging.getLogger(__name__)


class Done:
    """An awaitable whose value is already there: awaiting it never suspends."""

    __slots__ = ("value",)

    def __init__(self, value: Any) -> None:
        self.value = value

    def __await__(self) -> Generator[Any, None, Any]:
        return self.value
        yield  # makes this a generator that returns at once


class Calls:
    """How a :class:`JobRun` calls things: here, at once (every mode but the async one).

    Each method calls before it returns (so an exception is raised where the step loop
    calls it) and returns an awaitable that never suspends.
    """

    def io(self, function: Callable[..., Any], *args: Any) -> Awaitable[Any]:
        """The queue's own bookkeeping (database writes, hooks, signals)."""
        return Done(function(*args))

    def user(self, function: Callable[..., Any], *args: Any) -> Awaitable[Any]:
        """A hook around the step."""
        return Done(function(*args))

    def step(
        self, timer: StepTimer, definition: JobDefinition, job: Job, step: str
    ) -> Awaitable[None]:
        """The step itself, under ``timer``."""
        with timer:
            call_step(definition, job, step)
        return Done(None)


def step_coroutine(definition: JobDefinition, job: Job, step: str) -> Coroutine | None:
    """The step as a coroutine if it is ``async def`` (a JOBS task, or a Django Task), else None."""
    if definition.runner is not None:
        make = getattr(definition.runner, "coroutine", None)
        return make(job, step) if make is not None else None
    function = load(step)
    return function(job) if iscoroutinefunction(function) else None


def call_step(definition: JobDefinition, job: Job, step: str) -> None:
    """Call the step synchronously (an ``async def`` JOBS task through ``async_to_sync``)."""
    if definition.runner is not None:
        definition.runner(job, step)
        return
    function = load(step)
    if iscoroutinefunction(function):
        run_coroutine(function, [job], {}, step, None)
    else:
        function(job)


def finish(coroutine: Coroutine) -> Any:
    """Run a coroutine that never suspends (the step loop with :class:`Calls`) to its end."""
    try:
        coroutine.send(None)
    except StopIteration as done:
        return done.value
    coroutine.close()
    raise RuntimeError("the step loop suspended outside an event loop")


class JobRun:
    """Runs a claimed job's steps; ``persist`` retries a write through database outages."""

    def __init__(
        self,
        job: Job,
        persist: Callable[[Callable[[], bool]], bool],
        task_scope: contextlib.AbstractContextManager | None = None,
        lease_seconds: float | None = None,
        calls: Calls | None = None,
    ) -> None:
        self.job = job
        self.outcome = Outcomes(job, persist, lease_seconds)
        self.calls = calls or INLINE
        # Entered around user code (hooks and the task): where a second signal may interrupt.
        self.task_scope = task_scope or contextlib.nullcontext()

    def load_definition(self) -> JobDefinition | None:
        """The job's definition; None (the job marked FAILED) when it has none any more."""
        try:
            return get_definition(self.job.name)
        except UnknownJob as error:
            # A subclass (an unregistered Django Task, say) explains itself.
            note = "job name is no longer defined in JOBS" if type(error) is UnknownJob else ""
            self.outcome.fail(self.job.next_task, error, note, None)
        except Exception as error:  # a Django Task that no longer imports, for example
            self.outcome.fail(self.job.next_task, error, "", None)
        return None

    def run(
        self, *, one_step: bool = False, should_stop: Callable[[], bool] = lambda: False
    ) -> str:
        """Run steps until the job finishes, fails, or must stop; returns the job's state."""
        return finish(self.work(one_step=one_step, should_stop=should_stop))

    async def work(
        self, *, one_step: bool = False, should_stop: Callable[[], bool] = lambda: False
    ) -> str:
        """:meth:`run` as a coroutine, awaiting what it calls through ``self.calls``."""
        job, calls = self.job, self.calls
        try:
            definition = await calls.io(self.load_definition)
            if definition is None:
                return job.state
            if job.cancel_requested:
                # Asked to cancel while it ran, then released, retried or rescued: no more steps.
                try:
                    await calls.io(self.outcome.end_cancelled)
                except JobLost:
                    return job.state
            await calls.io(signals.send, signals.job_started, job)
            while True:
                step = job.next_task
                if step not in definition.tasks:
                    # Rows never choose code: only paths the definition lists are imported.
                    message = f"next_task {step!r} is not a step of job {job.name!r}"
                    error = ValueError(message)
                    fail = functools.partial(self.outcome.fail, retry=False)
                    await calls.io(fail, step, error, "", definition)
                    return job.state
                log_processing(job)
                following = await self.run_step(definition, step)
                log_updated(job, following)
                if not following:  # None: failed (or retried); "": complete
                    return job.state
                if one_step or should_stop():
                    await calls.io(self.outcome.release)
                    if not one_step:
                        job_log.info("Handing job id=%s back at next_task=%s", job.pk, following)
                    return job.state
        except Cancelled:
            logger.info("Job %s (%s) cancelled before step %s", job.pk, job.name, job.next_task)
            return job.state
        except JobLost:
            logger.warning("Lost the claim on job %s; another worker owns it now", job.pk)
            return "LOST"
        except WorkerInterrupted:
            # Stopped at once: the interrupted step runs again, on this attempt's account.
            logger.warning("Job %s interrupted in step %s; releasing it", job.pk, job.next_task)
            try:
                await calls.io(self.outcome.release)
            except (JobLost, DatabaseError) as error:
                logger.warning("Could not release job %s (%r); it will be rescued", job.pk, error)
            raise

    async def run_step(self, definition: JobDefinition, step: str) -> str | None:
        """Run one step and checkpoint; the next step's path, ``""`` when done, None on failure."""
        job, calls = self.job, self.calls
        checkpoint = job.workspace
        timer = StepTimer(definition.timeout_for(step), step)
        try:
            job.workspace = dict(job.workspace or {})
            with fan_out.collecting(job) as additions:
                with self.task_scope, tracing.step_span(job, step):
                    hook = definition.hook("pre_task_hook")
                    if hook:
                        await calls.user(hook, job)
                    await calls.step(timer, definition, job, step)
                    if timer.timed_out():
                        raise timer.error()  # the task swallowed its StepTimeout, or ran over
                    following = definition.next_task_after(step)
                    outcome = State.READY if following else State.COMPLETE
                    await calls.user(self.run_post_task_hook, definition, outcome, following)
                # Jobs the step added to its workflow land with its checkpoint, or not at all.
                await calls.io(self.outcome.checkpoint, following, additions.writer())
            return following
        except (WorkerInterrupted, JobLost, Cancelled):
            job.workspace = checkpoint
            raise
        except BaseException as error:  # SystemExit and KeyboardInterrupt from tasks too
            job.workspace = checkpoint
            if timer.fired and not isinstance(error, StepTimeout):
                # What the task raised after its timer fired is a consequence of the timeout.
                timeout, error = timer.error(), error
                timeout.__context__ = error
                error = timeout
            await calls.io(self.record_failure, definition, step, error)
            return None

    def record_failure(self, definition: JobDefinition, step: str, error: BaseException) -> None:
        """Write a failed step's outcome (a retry, a failure, or a release after an outage)."""
        job = self.job
        if database_went_away(job, error):
            self.outcome.release_after_outage(step, error)
            return
        self.outcome.fail(step, error, "", definition)
        # As in django-db-queue 3.x, the post-task hook runs after a failure too.
        before = copy.deepcopy(job.workspace)
        self.run_post_task_hook(definition, job.state, step)
        engine.save_hook_workspace(job, before)

    def run_post_task_hook(self, definition: JobDefinition, state: str, next_task: str) -> None:
        """Call the post-task hook as django-db-queue 3.x did, for code written for it.

        The hook sees the job as the step left it: ``state`` ``READY`` (more steps),
        ``COMPLETE`` or ``FAILED``, and ``next_task`` the following step (``""`` after
        the last; the failed step after a failure). If it raises, that is logged and
        the job keeps its outcome.
        """
        job = self.job
        held = job.state, job.next_task
        job.state, job.next_task = state, next_task
        try:
            hook = definition.hook("post_task_hook")
            if hook:
                hook(job)
        except Exception:
            logger.exception("Job id=%s post_task_hook failed", job.pk)
        finally:
            job.state, job.next_task = held


INLINE = Calls()
