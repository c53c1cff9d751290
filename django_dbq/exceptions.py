"""Exceptions raised to callers, and the ones a task may raise to steer retries."""

from __future__ import annotations

import datetime


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

    The attempt is given back, so a snooze never makes the job fail, whatever
    ``max_attempts`` is; the workspace returns to the last checkpoint. ``delay``
    (seconds or a ``timedelta``) overrides the job's backoff. The snooze is noted in
    ``Job.errors`` like a failed attempt.
    """

    def __init__(self, delay: float | datetime.timedelta | None = None, reason: str = ""):
        super().__init__(reason or "retry requested by the task")
        if isinstance(delay, datetime.timedelta):
            delay = delay.total_seconds()
        self.delay = delay


class FailPermanently(Exception):
    """Raise from a task to fail the job now, whatever attempts are left."""


class StepTimeout(Exception):
    """Raised inside a task that ran past its job definition's ``timeout``."""


class WorkerInterrupted(BaseException):
    """Raised in the worker's main thread by a second shutdown signal."""
