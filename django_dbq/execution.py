"""Running one claimed job: its steps in order, a checkpoint after each, and its outcome.

Every write goes through :meth:`Job.fenced_update`, so a worker that lost its claim
(paused past its lease, then rescued elsewhere) changes nothing.
"""

from __future__ import annotations

import contextlib
import copy
import datetime
import logging
from collections.abc import Callable
from typing import Any

from django.db import DatabaseError, InterfaceError, OperationalError, connections
from django.utils import timezone

from . import conf, leases, signals
from .definitions import JobDefinition, get_definition, load
from .errors import describe, error_record, error_values, storable_text
from .exceptions import (
    FailPermanently,
    InvalidWorkspace,
    JobLost,
    RetryLater,
    StepTimeout,
    UnknownJob,
    WorkerInterrupted,
    is_storable_delay,
)
from .models import Job, check_workspace
from .timeouts import StepTimer

__all__ = ["RELEASED", "JobLost", "JobRun", "finished"]

logger = logging.getLogger(__name__)
# django-db-queue 3.x logged each step under its worker command's name, in these
# formats: logging configurations and log searches written for it keep working.
job_log = logging.getLogger("django_dbq.management.commands.worker")


def log_processing(job: Job) -> None:
    job_log.info(
        'Processing job: name="%s" queue="%s" id=%s state=%s next_task=%s',
        job.name,
        job.queue_name,
        job.pk,
        job.state,
        job.next_task,
    )


def log_updated(job: Job, following: str | None) -> None:
    """The 3.x line after a step: the state it left the job in and the step that follows."""
    if following is None:
        state, following = job.state, job.next_task  # failed: retried (READY) or FAILED
    else:
        state = "READY" if following else "COMPLETE"
    job_log.info(
        'Updating job: name="%s" id=%s state=%s next_task=%s',
        job.name,
        job.pk,
        state,
        following or "none",
    )


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


class Cancelled(JobLost):
    """The job was cancelled at the request of someone else; this worker let it go."""


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
        if not self.persist_outcome(lambda: self.job.fenced_update(**values)):
            raise JobLost()

    def persist_outcome(self, write: Callable[[], bool]) -> bool:
        """``persist`` a write; once more on a fresh connection if the connection is broken.

        ``persist`` retries outages. What is left is a connection that user code broke,
        e.g. MySQL's "commands out of sync" after a timeout interrupted a task's query:
        without a fresh connection the job's outcome could never be written.
        """
        try:
            return self.persist(write)
        except DatabaseError as error:
            connection = connections[self.job._state.db or "default"]
            if connection.in_atomic_block:
                raise  # the caller's transaction (a TestCase) owns the connection
            logger.warning(
                "Job %s: writing its outcome failed (%s: %s); retrying on a new connection",
                self.job.pk,
                type(error).__name__,
                error,
            )
            connection.close()
            return self.persist(write)

    def definition(self) -> JobDefinition | None:
        try:
            return get_definition(self.job.name)
        except UnknownJob as error:
            # A subclass (an unregistered Django Task, say) explains itself.
            note = "job name is no longer defined in JOBS" if type(error) is UnknownJob else ""
            self.fail(self.job.next_task, error, note, None)
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
                log_processing(job)
                following = self.run_step(definition, step)
                log_updated(job, following)
                if following is None:
                    return job.state
                send(signals.step_finished, job=job, task=step)
                if not following:
                    send(signals.job_completed, job=job)
                    return job.state
                if one_step or should_stop():
                    self.release()
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
                self.release()
            except (JobLost, DatabaseError) as error:
                logger.warning("Could not release job %s (%r); it will be rescued", job.pk, error)
            raise

    def run_step(self, definition: JobDefinition, step: str) -> str | None:
        """Run one step and checkpoint; the next step's path, ``""`` when done, None on failure."""
        job = self.job
        checkpoint = job.workspace
        timer = StepTimer(definition.timeout_for(step), step)
        try:
            job.workspace = dict(job.workspace or {})
            with self.task_scope:
                hook = definition.hook("pre_task_hook")
                if hook:
                    hook(job)
                with timer:
                    if definition.runner is not None:
                        definition.runner(job, step)
                    else:
                        load(step)(job)
                if timer.timed_out():
                    raise timer.error()  # the task swallowed its StepTimeout, or ran over anyway
                following = definition.next_task_after(step)
                self.run_post_task_hook(definition, "READY" if following else "COMPLETE", following)
            self.checkpoint(following)
            return following
        except (WorkerInterrupted, JobLost):
            job.workspace = checkpoint
            raise
        except BaseException as error:  # SystemExit and KeyboardInterrupt from tasks too
            job.workspace = checkpoint
            if timer.fired and not isinstance(error, StepTimeout):
                # What the task raised after its timer fired is a consequence of the timeout.
                timeout, error = timer.error(), error
                timeout.__context__ = error
                error = timeout
            if database_went_away(job, error):
                self.release_after_outage(step, error)
            else:
                self.fail(step, error, "", definition)
                # As in django-db-queue 3.x, the post-task hook runs after a failure too.
                before = copy.deepcopy(job.workspace)
                self.run_post_task_hook(definition, job.state, step)
                save_hook_workspace(job, before)
            return None

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

    def complete(self) -> None:
        self.checkpoint("")

    def checkpoint(self, following: str) -> None:
        """Save the step's outcome: a checkpoint before ``following``, or completion when ``""``.

        The cancel flag is checked by the same statement (no extra round trip per
        step): a job someone asked to cancel ends ``CANCELLED``, never ``COMPLETE``.
        """
        values = {"workspace": self.job.workspace, "next_task": following}
        if not following:
            # A rescued or retried job that completes has no current error (``errors`` keeps it).
            values.update(finished("COMPLETE"), error="")
        using = self.job._state.db or "default"

        def write() -> bool:
            # The deadline is taken at each try: a retried write must not move the lease back.
            lease = {}
            if following and self.lease_seconds:
                lease["lease_expires_at"] = leases.deadline(self.lease_seconds, using)
            return self.job.fenced_update(unless_cancelled=True, **values, **lease)

        if self.persist_outcome(write):
            return
        claim = Job.objects.using(self.job._state.db).filter(
            pk=self.job.pk, lease_token=self.job.claim_token
        )
        if claim.filter(cancel_requested=True).exists():
            self.cancel(workspace=self.job.workspace, next_task=following)
        raise JobLost()

    def cancel(self, **values: Any) -> None:
        self.write(**finished("CANCELLED"), **values)
        send(signals.job_cancelled, job=self.job)
        raise Cancelled()

    def release(self, *, give_back_attempt: bool = True) -> None:
        """Hand the job back, ``READY`` at its next step; a graceful stop uses no attempt."""
        attempts = self.job.attempts - 1 if give_back_attempt else self.job.attempts
        self.write(**RELEASED, attempts=max(attempts, 0))

    def fail(self, step, error, message, definition, *, retry: bool = True) -> None:
        job = self.job
        if isinstance(error, RetryLater) and retry and definition is not None:
            if job.snoozes < definition.max_snoozes and is_storable_delay(
                definition.retry_delay_for(job.attempts) if error.delay is None else error.delay
            ):
                self.snooze(step, error, definition)
                return
            message = message or (
                f"{describe(error)} (snoozed {job.snoozes} times already, the job's "
                "max_snoozes: this one counts as a failed attempt)"
            )
        record = error_record(job, step, error, message)
        values = error_values(job, record)
        delay = self.retry_delay(error, definition, retry)
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

    def snooze(self, step: str, error: RetryLater, definition: JobDefinition) -> None:
        """The task asked to run this step again later: not a failure, and no attempt used.

        The workspace goes back to the last checkpoint, like after a failure.
        """
        job = self.job
        delay = definition.retry_delay_for(job.attempts) if error.delay is None else error.delay
        logger.info(
            "Job %s (%s) snoozed at step %s for %s s: %s", job.pk, job.name, step, delay, error
        )
        self.write(
            **RELEASED,
            run_after=timezone.now() + datetime.timedelta(seconds=delay),
            attempts=max(job.attempts - 1, 0),
            snoozes=job.snoozes + 1,
        )
        send(signals.job_retried, job=job, delay=delay, manual=False)

    def retry_delay(self, error, definition, retry: bool) -> float | None:
        """Seconds until the failed step runs again, or None when the job fails for good."""
        if not retry or definition is None or isinstance(error, FailPermanently):
            return None
        if self.job.attempts < self.job.max_attempts:
            return definition.retry_delay_for(self.job.attempts)
        return None


def run_failure_hook(
    job: Job, definition: JobDefinition | None, error: BaseException | None
) -> None:
    """Call the definition's failure hook; if it raises, note that on the row and go on.

    What the hook writes to the workspace is saved with the failed job, as in
    django-db-queue 3.x.
    """
    before = copy.deepcopy(job.workspace)
    try:
        hook = definition.hook("failure_hook") if definition else None
        if hook:
            hook(job, error)
    except BaseException as hook_error:
        logger.exception("Failure hook of job %s raised", job.pk)
        note = f"\n\nThe failure hook raised {type(hook_error).__name__}: {hook_error}"
        failed = Job.objects.using(job._state.db).filter(pk=job.pk, state="FAILED")
        failed.update(error=storable_text(job.error + note))
    save_hook_workspace(job, before)


def save_hook_workspace(job: Job, before: Any) -> None:
    """Save what a hook run after the job's outcome changed in its workspace.

    The outcome write left no claim to fence on, so this one is fenced on that write's
    own ``modified`` stamp: it lands only while the row is exactly as the outcome left
    it. A retry claimed (or run, or retried by hand) meanwhile is never overwritten.
    """
    if job.workspace == before:
        return
    try:
        workspace = check_workspace(job.workspace)
    except InvalidWorkspace as error:
        logger.error("Job %s: a hook left a workspace that cannot be saved: %s", job.pk, error)
        return
    Job.objects.using(job._state.db).filter(
        pk=job.pk, state=job.state, modified=job.modified
    ).update(workspace=workspace)
