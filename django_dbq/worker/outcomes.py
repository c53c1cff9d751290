"""What a step's end writes: a checkpoint, completion, a retry, a failure, a release.

Each outcome is the engine's write, fenced on the claim, made through the worker's
``persist`` (retries through database outages). A write that does not land means
the claim is gone: :class:`~django_dbq.exceptions.JobLost`.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import Any

from django.db import DatabaseError, connections

from .. import conf, engine, progress
from ..definitions import JobDefinition
from ..errors import describe, error_record, error_values
from ..exceptions import FailPermanently, JobLost, RetryLater, is_storable_delay
from ..models import Job

logger = logging.getLogger(__name__)


class Cancelled(Exception):
    """The job ended ``CANCELLED`` at someone's request: run no more of it."""


class Outcomes:
    """Writes the outcomes of ``job``'s steps while this worker holds its claim."""

    def __init__(
        self,
        job: Job,
        persist: Callable[[Callable[[], bool]], bool],
        lease_seconds: float | None = None,
    ) -> None:
        self.job = job
        self.persist = persist
        # Checkpoints renew the lease in the same statement, so a job that makes
        # progress keeps its lease even when the heartbeat thread is starved
        # (SQLite writers queueing on the database lock, an overloaded host).
        self.lease_seconds = lease_seconds

    @staticmethod
    def landed(written: bool) -> None:
        """An outcome write that did not land means the claim is gone."""
        if not written:
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
        self.landed(engine.release(job, persist=self.persist_outcome, **values))

    def checkpoint(self, following: str, also: Callable[[], list] | None = None) -> None:
        """Save the step's outcome: a checkpoint before ``following``, or completion when ``""``.

        A job someone asked to cancel meanwhile ends ``CANCELLED``, never ``COMPLETE``.
        ``also``: more writes for the checkpoint's transaction (see ``engine.checkpoint``).
        """
        job = self.job
        if engine.checkpoint(
            job,
            following,
            lease_seconds=self.lease_seconds,
            persist=self.persist_outcome,
            also=also,
            more=progress.unsaved(job),
        ):
            return
        claim = job._meta.default_manager.using(job._state.db).filter(
            pk=job.pk, lease_token=job.claim_token
        )
        if claim.filter(cancel_requested=True).exists():
            self.end_cancelled(workspace=job.workspace, next_task=following)
        raise JobLost()

    def end_cancelled(self, **values: Any) -> None:
        """End the job ``CANCELLED`` as asked, and leave it: raises :class:`Cancelled`."""
        self.landed(engine.cancel_running(self.job, persist=self.persist_outcome, **values))
        raise Cancelled()

    def release(self) -> None:
        """Hand the job back, ``READY`` at its next step; a graceful stop uses no attempt."""
        self.landed(engine.hand_back(self.job, persist=self.persist_outcome))

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
            self.landed(engine.retry_later(job, delay, persist=self.persist_outcome, **values))
        else:
            self.landed(engine.fail(job, error, definition, persist=self.persist_outcome, **values))

    def snooze(self, step: str, error: RetryLater, definition: JobDefinition) -> None:
        """The task asked to run this step again later: not a failure, and no attempt used.

        The workspace goes back to the last checkpoint, like after a failure.
        """
        job = self.job
        delay = definition.retry_delay_for(job.attempts) if error.delay is None else error.delay
        logger.info(
            "Job %s (%s) snoozed at step %s for %s s: %s", job.pk, job.name, step, delay, error
        )
        self.landed(
            engine.retry_later(
                job,
                delay,
                persist=self.persist_outcome,
                attempts=max(job.attempts - 1, 0),
                snoozes=job.snoozes + 1,
            )
        )

    def retry_delay(self, error, definition, retry: bool) -> float | None:
        """Seconds until the failed step runs again, or None when the job fails for good."""
        if not retry or definition is None or isinstance(error, FailPermanently):
            return None
        if self.job.attempts < self.job.max_attempts:
            return definition.retry_delay_for(self.job.attempts)
        return None
