"""Settings with their defaults, read on every access so tests can override them."""

from __future__ import annotations

from typing import Any

from django.conf import settings as django_settings
from django.core.exceptions import ImproperlyConfigured

DEFAULTS: dict[str, Any] = {
    # Seconds a claim stays valid without a heartbeat; a dead worker's jobs are
    # rescued this long after its last heartbeat.
    "DBQ_LEASE_SECONDS": 60.0,
    # Seconds between polls when no wake-up mechanism is available.
    "DBQ_POLL_INTERVAL": 0.5,
    # Use LISTEN/NOTIFY on PostgreSQL. Turn off behind PgBouncer in transaction mode.
    "DBQ_LISTEN": True,
    # PostgreSQL: the worker's checkpoints and completions commit without waiting
    # for the WAL flush (a server crash may re-run the last steps; at-least-once holds).
    "DBQ_FAST_COMMIT": True,
    # Most jobs one claim may take; the worker sizes batches to ~100 ms of work.
    "DBQ_CLAIM_BATCH_SIZE": 20,
    # Default retry policy for job definitions that do not set their own.
    "DBQ_MAX_ATTEMPTS": 1,
    "DBQ_RETRY_BACKOFF": "exponential",
    "DBQ_RETRY_DELAY": 1.0,
    "DBQ_RETRY_DELAY_MAX": 3600.0,
    # How often a job's tasks may snooze (raise RetryLater) before a snooze counts as
    # a failed attempt: a task that snoozes forever must not loop forever.
    "DBQ_MAX_SNOOZES": 100,
    # A job whose worker was lost is run again until it has been started this
    # many times (or its max_attempts, if larger); then it fails.
    "DBQ_RESCUE_MAX_ATTEMPTS": 5,
    # Recurring jobs: {"schedule name": {"job": "job name", "cron": "*/5 * * * *", ...}}.
    "DBQ_SCHEDULE": {},
    # Errors kept on a job (oldest dropped) and the size of each traceback.
    "DBQ_ERROR_HISTORY": 10,
    "DBQ_TRACEBACK_CHARS": 4000,
}

POSITIVE_NUMBERS = ("DBQ_LEASE_SECONDS", "DBQ_POLL_INTERVAL", "DBQ_RETRY_DELAY_MAX")
POSITIVE_INTEGERS = (
    "DBQ_CLAIM_BATCH_SIZE",
    "DBQ_MAX_ATTEMPTS",
    "DBQ_MAX_SNOOZES",
    "DBQ_RESCUE_MAX_ATTEMPTS",
    "DBQ_ERROR_HISTORY",
    "DBQ_TRACEBACK_CHARS",
)


def is_whole_number(value: Any) -> bool:
    """An ``int`` of at least 1 (``True`` is not one)."""
    return isinstance(value, int) and not isinstance(value, bool) and value >= 1


def require_whole_number(name: str, value: Any) -> None:
    """Raise ``ValueError`` unless ``value`` is a whole number of at least 1."""
    if not is_whole_number(value):
        raise ValueError(f"{name} must be a whole number of at least 1, not {value!r}.")


# Job.queue_name's column holds up to this many characters.
QUEUE_NAME_MAX_LENGTH = 100


def is_queue_name(value: Any) -> bool:
    """A queue name a worker can serve: a non-empty ``str`` that fits the column."""
    return isinstance(value, str) and 0 < len(value) <= QUEUE_NAME_MAX_LENGTH


def get(name: str) -> Any:
    """Return a setting's value, validated, falling back to its default."""
    value = getattr(django_settings, name, DEFAULTS[name])
    if name in POSITIVE_NUMBERS or name == "DBQ_RETRY_DELAY":
        if isinstance(value, bool) or not isinstance(value, int | float):
            raise ImproperlyConfigured(f"{name} must be a number, not {value!r}.")
        if value < 0 or (name in POSITIVE_NUMBERS and value == 0):
            raise ImproperlyConfigured(f"{name} must be greater than zero, not {value!r}.")
    elif name in POSITIVE_INTEGERS:
        try:
            require_whole_number(name, value)
        except ValueError as error:
            raise ImproperlyConfigured(str(error)) from None
    elif name in ("DBQ_LISTEN", "DBQ_FAST_COMMIT") and not isinstance(value, bool):
        raise ImproperlyConfigured(f"{name} must be True or False, not {value!r}.")
    elif name == "DBQ_RETRY_BACKOFF" and value not in ("exponential", "fixed"):
        raise ImproperlyConfigured(
            f"DBQ_RETRY_BACKOFF must be 'exponential' or 'fixed', not {value!r}."
        )
    elif name == "DBQ_SCHEDULE" and not isinstance(value, dict):
        raise ImproperlyConfigured(f"DBQ_SCHEDULE must be a dict, not {type(value).__name__}.")
    return value


def jobs_setting() -> Any:
    """The raw ``JOBS`` setting (validated by :mod:`django_dbq.definitions`)."""
    return getattr(django_settings, "JOBS", {})
