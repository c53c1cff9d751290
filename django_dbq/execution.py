"""Running one claimed job: its steps in order, a checkpoint after each, and its outcome.

Every write goes through :meth:`Job.fenced_update`, so a worker that lost its claim
(paused past its lease, then rescued elsewhere) changes nothing.
"""

from __future__ import annotations

import contextlib
import datetime
import logging
import signal
import threading
import traceback
from collections.abc import Callable
from typing import Any

from django.db import DatabaseError, InterfaceError, OperationalError, connections
from django.utils import timezone

from . import conf, leases, signals
from .definitions import JobDefinition, get_definition, load
from .exceptions import FailPermanently, RetryLater, StepTimeout, UnknownJob, WorkerInterrupted
from .models import Job

logger = logging.getLogger(__name__)

RELEASED = {"state": "READY", "lease_token": None, "lease_expires_at": None, "worker_id": ""}


def finished(state: str) -> dict[str, Any]:
    """The values that end a job: its final state, its claim let go (and so its unique key)."""
    return {
        "state": state,
        "finished_at": timezone.now(),
        "lease_token": None,
        "lease_expires_at": None,
    }


def send(signal, **kwargs: Any) -> None:
    """Send a monitoring signal; a receiver that raises is logged, never fatal to the job."""
    if not signal.receivers:
        return
    for receiver, outcome in signal.send_robust(sender=Job, **kwargs):
        if isinstance(outcome, Exception):
            logger.error(
                "Signal receiver %r raised %s: %s",
                receiver,
                type(outcome).__name__,
                outcome,
                exc_info=outcome,
            )


def database_went_away(job: Job, error: BaseException) -> bool:
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


class JobLost(Exception):
    """This worker's claim on the job is gone (rescued, re-claimed, or cancelled)."""


def error_record(job: Job, step: str, error: BaseException | None, message: str = "") -> dict:
    """One entry of ``Job.errors``: what failed, where, on which attempt, and when."""
    if error is None:
        kind, text, trace = "WorkerLost", message, ""
    else:
        kind, text = type(error).__name__, message or str(error)
        trace = "".join(traceback.format_exception(error))
    return {
        "attempt": job.attempts,
        "step": step,
        "type": kind,
        "message": text,
        "traceback": trace[-conf.get("DBQ_TRACEBACK_CHARS") :],
        "at": timezone.now().isoformat(),
        # The importable class path and the worker (read by the Django Tasks backend).
        "class": f"{type(error).__module__}.{type(error).__qualname__}" if error else "",
        "worker": job.worker_id,
    }


def error_values(job: Job, record: dict) -> dict:
    """The ``error``/``errors`` column values after adding ``record`` (history bounded)."""
    history = (list(job.errors or []) + [record])[-conf.get("DBQ_ERROR_HISTORY") :]
    text = f"{record['type']}: {record['message']}"
    if record["traceback"]:
        text += f"\n{record['traceback']}"
    return {"errors": history, "error": text}


class _Alarm:
    """Interrupts the main thread with :class:`StepTimeout` after ``seconds`` (POSIX only)."""

    def __init__(self, seconds: float | None, step: str):
        usable = (
            hasattr(signal, "setitimer") and threading.current_thread() is threading.main_thread()
        )
        self.seconds = seconds if usable else None
        self.step = step

    def _fire(self, signum: int, frame: Any) -> None:
        raise StepTimeout(f"{self.step} ran longer than its timeout of {self.seconds} s")

    def __enter__(self) -> _Alarm:
        if self.seconds:
            self.previous = signal.signal(signal.SIGALRM, self._fire)
            signal.setitimer(signal.ITIMER_REAL, self.seconds)
        return self

    def __exit__(self, *exc_info: Any) -> None:
        if self.seconds:
            signal.setitimer(signal.ITIMER_REAL, 0)
            signal.signal(signal.SIGALRM, self.previous)


class JobRun:
    """Runs a claimed job's steps; ``persist`` retries a write through database outages."""

    def __init__(
        self,
        job: Job,
        persist: Callable[[Callable[[], bool]], bool],
        task_scope: contextlib.AbstractContextManager | None = None,
        lease_seconds: float | None = None,
    ):
        self.job = job
        self.persist = persist
        # Checkpoints renew the lease in the same statement, so a job that makes
        # progress keeps its lease even when the heartbeat thread is starved
        # (SQLite writers queueing on the database lock, an overloaded host).
        self.lease_seconds = lease_seconds
        # Entered around user code (hooks and the task): where a second signal may interrupt.
        self.task_scope = task_scope or contextlib.nullcontext()

    def write(self, **values: Any) -> None:
        if not self.persist(lambda: self.job.fenced_update(**values)):
            raise JobLost()

    def definition(self) -> JobDefinition | None:
        try:
            return get_definition(self.job.name)
        except UnknownJob as error:
            self.fail(self.job.next_task, error, "job name is no longer defined in JOBS", None)
        except Exception as error:  # a Django Task that no longer imports, for example
            self.fail(self.job.next_task, error, "", None)
        return None

    def run(
        self, *, one_step: bool = False, should_stop: Callable[[], bool] = lambda: False
    ) -> str:
        """Run steps until the job finishes, fails, or must stop; returns the job's state."""
        job = self.job
        try:
            definition = self.definition()
            if definition is None:
                return job.state
            if job.cancel_requested:
                # Asked to cancel while it ran, then released, retried or rescued: no more steps.
                try:
                    self.cancel()
                except JobLost:
                    return job.state
            send(signals.job_started, job=job)
            while True:
                step = job.next_task
                if step not in definition.tasks:
                    # Rows never choose code: only paths the definition lists are imported.
                    message = f"next_task {step!r} is not a step of job {job.name!r}"
                    self.fail(step, ValueError(message), "", definition, retry=False)
                    return job.state
                following = self.run_step(definition, step)
                if following is None:
                    return job.state
                send(signals.step_finished, job=job, task=step)
                if not following:
                    send(signals.job_completed, job=job)
                    return job.state
                if one_step or should_stop():
                    self.release()
                    return job.state
        except JobLost:
            logger.warning("Lost the claim on job %s; another worker owns it now", job.pk)
            return "LOST"
        except WorkerInterrupted:
            # Stopped at once: the interrupted step runs again, on this attempt's account.
            logger.warning("Job %s interrupted in step %s; releasing it", job.pk, job.next_task)
            try:
                self.release()
            except (JobLost, DatabaseError) as error:
                logger.warning("Could not release job %s (%r); it will be rescued", job.pk, error)
            raise

    def run_step(self, definition: JobDefinition, step: str) -> str | None:
        """Run one step and checkpoint; the next step's path, ``""`` when done, None on failure."""
        job = self.job
        checkpoint = job.workspace
        try:
            job.workspace = dict(job.workspace or {})
            with self.task_scope:
                hook = definition.hook("pre_task_hook")
                if hook:
                    hook(job)
                with _Alarm(definition.timeout_for(step), step):
                    if definition.runner is not None:
                        definition.runner(job, step)
                    else:
                        load(step)(job)
                hook = definition.hook("post_task_hook")
                if hook:
                    hook(job)
            following = definition.next_task_after(step)
            if following:
                self.checkpoint(following)
            else:
                self.complete()
            return following
        except (WorkerInterrupted, JobLost):
            job.workspace = checkpoint
            raise
        except BaseException as error:  # SystemExit and KeyboardInterrupt from tasks too
            job.workspace = checkpoint
            if database_went_away(job, error):
                self.release_after_outage(step, error)
            else:
                self.fail(step, error, "", definition)
            return None

    def release_after_outage(self, step: str, error: BaseException) -> None:
        """The step failed because the database went away: run it again, like a lost worker would.

        The attempt counts (a step that keeps losing the database fails in the end,
        as a job that keeps losing its worker does), but ``max_attempts`` does not apply.
        """
        job = self.job
        message = f"the database connection was lost during {step}: {error}"
        values = error_values(job, error_record(job, step, error, message))
        logger.warning("Job %s: %s; it will run that step again", job.pk, message)
        if job.attempts >= max(job.max_attempts, conf.get("DBQ_RESCUE_MAX_ATTEMPTS")):
            self.fail(step, error, message, None)
            return
        self.write(**RELEASED, **values)

    def checkpoint(self, following: str) -> None:
        # The cancel flag is checked by the same statement: no extra round trip per step.
        values = {"workspace": self.job.workspace, "next_task": following}
        using = self.job._state.db or "default"

        def write() -> bool:
            # The deadline is taken at each try: a retried write must not move the lease back.
            lease = {}
            if self.lease_seconds:
                lease["lease_expires_at"] = leases.deadline(self.lease_seconds, using)
            return self.job.fenced_update(unless_cancelled=True, **values, **lease)

        if self.persist(write):
            return
        claim = Job.objects.using(self.job._state.db).filter(
            pk=self.job.pk, lease_token=self.job.lease_token
        )
        if claim.filter(cancel_requested=True).exists():
            self.cancel(**values)
        raise JobLost()

    def complete(self) -> None:
        self.write(**finished("COMPLETE"), next_task="", workspace=self.job.workspace)

    def cancel(self, **values: Any) -> None:
        self.write(**finished("CANCELLED"), **values)
        send(signals.job_cancelled, job=self.job)
        raise JobLost()

    def release(self, *, give_back_attempt: bool = True) -> None:
        """Hand the job back, ``READY`` at its next step; a graceful stop uses no attempt."""
        attempts = self.job.attempts - 1 if give_back_attempt else self.job.attempts
        self.write(**RELEASED, attempts=max(attempts, 0))

    def fail(self, step, error, message, definition, *, retry: bool = True) -> None:
        job = self.job
        record = error_record(job, step, error, message)
        values = error_values(job, record)
        if isinstance(error, RetryLater):
            delay = (
                error.delay if error.delay is not None else definition.retry_delay_for(job.attempts)
            )
            values["attempts"] = max(job.attempts - 1, 0)
        elif (
            retry
            and definition
            and not isinstance(error, FailPermanently)
            and (job.attempts < job.max_attempts)
        ):
            delay = definition.retry_delay_for(job.attempts)
        else:
            delay = None
        logger.log(
            logging.WARNING if delay is not None else logging.ERROR,
            "Job %s (%s) step %s failed on attempt %s: %s: %s",
            job.pk,
            job.name,
            step,
            job.attempts,
            record["type"],
            record["message"],
        )
        if delay is not None:
            run_after = timezone.now() + datetime.timedelta(seconds=delay)
            self.write(**RELEASED, run_after=run_after, **values)
            send(signals.job_retried, job=job, delay=delay, manual=False)
            return
        self.write(**finished("FAILED"), **values)
        send(signals.job_failed, job=job, exception=error)
        run_failure_hook(job, definition, error)


def run_failure_hook(
    job: Job, definition: JobDefinition | None, error: BaseException | None
) -> None:
    """Call the definition's failure hook; if it raises, note that on the row and go on."""
    try:
        hook = definition.hook("failure_hook") if definition else None
        if hook:
            hook(job, error)
    except BaseException as hook_error:
        logger.exception("Failure hook of job %s raised", job.pk)
        note = f"\n\nThe failure hook raised {type(hook_error).__name__}: {hook_error}"
        failed = Job.objects.using(job._state.db).filter(pk=job.pk, state="FAILED")
        failed.update(error=job.error + note)
