"""Exceptions raised to callers, and the ones a task may raise to steer retries."""

from __future__ import annotations

import datetime
import math


class UnknownJob(KeyError):
    """A job name that ``JOBS`` does not define."""

    def __str__(self) -> str:
        return str(self.args[0]) if self.args else "unknown job"


class InvalidWorkspace(ValueError):
    """A workspace that is not a JSON-serialisable dict."""


class DuplicateJob(ValueError):
    """A job with the same name and unique key is already waiting or running.

    ``existing_job`` is that job (None if it finished in the meantime); nothing was inserted.
    """

    def __init__(self, message: str, existing_job=None):
        super().__init__(message)
        self.existing_job = existing_job


class RetryLater(Exception):
    """Raise from a task to run this step again later ("snooze").

    A snooze is not a failure: the attempt is given back, nothing is added to
    ``Job.errors``, and ``Job.snoozes`` counts it. The workspace returns to the last
    checkpoint (what the task changed before raising is dropped). ``delay`` (seconds
    or a ``timedelta``) overrides the job's backoff. Past the job's ``max_snoozes``
    (``DBQ_MAX_SNOOZES``, 100 by default) a snooze counts as a failed attempt, so a
    task that snoozes forever does not loop forever.
    """

    # A delay beyond this cannot be stored as a ``run_after`` on every database.
    MAX_DELAY = 100 * 365 * 24 * 3600.0

    def __init__(self, delay: float | datetime.timedelta | None = None, reason: str = ""):
        super().__init__(reason or "retry requested by the task")
        if isinstance(delay, datetime.timedelta):
            delay = delay.total_seconds()
        if delay is not None and not is_storable_delay(delay):
            # Raised where the task wrote it, so the attempt fails with this message.
            raise ValueError(
                f"RetryLater delay must be a number of seconds from 0 to {self.MAX_DELAY:.0f}, "
                f"not {delay!r}."
            )
        self.delay = delay


def is_storable_delay(delay: object) -> bool:
    """A retry delay in seconds that a ``run_after`` can hold: finite, 0 to 100 years."""
    return (
        isinstance(delay, int | float)
        and not isinstance(delay, bool)
        and math.isfinite(delay)
        and 0 <= delay <= RetryLater.MAX_DELAY
    )


class FailPermanently(Exception):
    """Raise from a task to fail the job now, whatever attempts are left."""


class StepTimeout(BaseException):
    """Raised inside a task that ran past its job definition's ``timeout``.

    A ``BaseException``, like ``KeyboardInterrupt``: an ordinary ``except Exception``
    in the task does not swallow it. A step whose timer fired fails its attempt even
    if the task caught this and returned.
    """


class JobLost(Exception):
    """The claim this instance held is gone: the job was rescued, re-claimed or finished.

    Raised by ``job.save()`` in a task whose worker lost the job; nothing was written.
    """


class WorkerInterrupted(BaseException):
    """Raised in the worker's main thread by a second shutdown signal."""
