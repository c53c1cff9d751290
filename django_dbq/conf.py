"""Every setting: its default and what a valid value is, written once.

Values are read on every access, so tests can override them. A job definition's
retry settings (``JOBS`` entries, the Tasks backend's options) default to the
``DBQ_*`` setting of the same meaning and follow the same rule (:data:`JOB_SETTINGS`).
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from django.conf import settings as django_settings
from django.core.exceptions import ImproperlyConfigured


@dataclass(frozen=True)
class Rule:
    """What a value must be: a test, and the words an error message uses for it."""

    wanted: str
    test: Callable[[Any], bool]

    def problem(self, name: str, value: Any) -> str | None:
        """``"<name> must be <wanted>, not <value>."``, or None if ``value`` passes."""
        return None if self.test(value) else f"{name} must be {self.wanted}, not {value!r}."


def _is_number(value: Any) -> bool:
    # NaN and infinity would pass a comparison with 0, but make no delay or limit.
    return isinstance(value, int | float) and not isinstance(value, bool) and math.isfinite(value)


def _is_int(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def is_whole_number(value: Any) -> bool:
    """An ``int`` of at least 1 (``True`` is not one)."""
    return _is_int(value) and value >= 1


BACKOFFS = ("exponential", "fixed")
SECONDS = Rule("a number of seconds of at least 0", lambda v: _is_number(v) and v >= 0)
POSITIVE_SECONDS = Rule("a number of seconds above 0", lambda v: _is_number(v) and v > 0)
WHOLE_NUMBER = Rule("a whole number of at least 1", is_whole_number)
COUNT = Rule("a whole number of at least 0", lambda v: _is_int(v) and v >= 0)
SWITCH = Rule("True or False", lambda v: isinstance(v, bool))
BACKOFF = Rule(" or ".join(map(repr, BACKOFFS)), lambda v: v in BACKOFFS)
MAPPING = Rule("a dict", lambda v: isinstance(v, dict))


# Job.queue_name's column holds up to this many characters.
QUEUE_NAME_MAX_LENGTH = 100


def is_queue_name(value: Any) -> bool:
    """A queue name a worker can serve: a non-empty ``str`` that fits the column."""
    return isinstance(value, str) and 0 < len(value) <= QUEUE_NAME_MAX_LENGTH


# A rate's period, by the letter after the slash: "100/m" is 100 starts a minute.
RATE_PERIODS = {"s": 1.0, "m": 60.0, "h": 3600.0}


def parse_rate(value: Any) -> tuple[int, float] | None:
    """``"N/s"``, ``"N/m"`` or ``"N/h"`` (N a whole number of at least 1) -> (N, period
    in seconds); None for anything else."""
    if not isinstance(value, str):
        return None
    count, slash, unit = value.strip().partition("/")
    if not slash or unit.strip() not in RATE_PERIODS or not count.strip().isdigit():
        return None
    starts = int(count)
    return (starts, RATE_PERIODS[unit.strip()]) if starts >= 1 else None


RATE = Rule(
    "a rate such as '100/m' (a whole number of at least 1, then /s, /m or /h)",
    lambda v: parse_rate(v) is not None,
)

# What a queue may be given in DBQ_QUEUES, and what each option must be. Without
# "concurrency" or "rate" a queue has no limit (and its claims cost what they always did).
QUEUE_OPTIONS: dict[str, Rule] = {"concurrency": WHOLE_NUMBER, "rate": RATE}


class QueuesRule(Rule):
    """``DBQ_QUEUES``: queue name -> options; the message names the entry at fault."""

    def problem(self, name: str, value: Any) -> str | None:
        if not isinstance(value, dict):
            return super().problem(name, value)
        for queue, options in value.items():
            entry = f"{name}[{queue!r}]"
            if not is_queue_name(queue):
                return (
                    f"{name}'s keys must be queue names (strings of 1 to "
                    f"{QUEUE_NAME_MAX_LENGTH} characters), not {queue!r}."
                )
            if not isinstance(options, dict):
                return f"{entry} must be a dict of options, not {options!r}."
            unknown = sorted(map(repr, set(options) - set(QUEUE_OPTIONS)))
            if unknown:
                known = ", ".join(map(repr, QUEUE_OPTIONS))
                return f"{entry} has unknown option(s) {', '.join(unknown)} (known: {known})."
            for key, value in options.items():
                problem = QUEUE_OPTIONS[key].problem(f"{entry}[{key!r}]", value)
                if problem:
                    return problem
        return None


QUEUES = QueuesRule("a dict of queue names to their options", lambda v: isinstance(v, dict))

# name: (default, rule)
SETTINGS: dict[str, tuple[Any, Rule]] = {
    # Seconds a claim stays valid without a heartbeat; a dead worker's jobs are
    # rescued this long after its last heartbeat.
    "DBQ_LEASE_SECONDS": (60.0, POSITIVE_SECONDS),
    # Seconds between polls when no wake-up mechanism is available.
    "DBQ_POLL_INTERVAL": (0.5, POSITIVE_SECONDS),
    # Use LISTEN/NOTIFY on PostgreSQL. Turn off behind PgBouncer in transaction mode.
    "DBQ_LISTEN": (True, SWITCH),
    # Seconds between two progress writes of one job (job.set_progress); the reports in
    # between are kept, and the step's checkpoint writes the last one.
    "DBQ_PROGRESS_INTERVAL": (1.0, SECONDS),
    # PostgreSQL: the worker's checkpoints and completions commit without waiting
    # for the WAL flush (a server crash may re-run the last steps; at-least-once holds).
    "DBQ_FAST_COMMIT": (True, SWITCH),
    # Most jobs one claim may take; the worker sizes batches to ~100 ms of work.
    "DBQ_CLAIM_BATCH_SIZE": (20, WHOLE_NUMBER),
    # Default retry policy for job definitions that do not set their own. One attempt
    # (no retry) is kept for django-db-queue 3.x compatibility: its jobs never retried.
    "DBQ_MAX_ATTEMPTS": (1, WHOLE_NUMBER),
    "DBQ_RETRY_BACKOFF": ("exponential", BACKOFF),
    "DBQ_RETRY_DELAY": (1.0, SECONDS),
    "DBQ_RETRY_DELAY_MAX": (3600.0, POSITIVE_SECONDS),
    # How often a job's tasks may snooze (raise RetryLater) before a snooze counts as
    # a failed attempt: a task that snoozes forever must not loop forever. 0: never.
    "DBQ_MAX_SNOOZES": (100, COUNT),
    # A job whose worker was lost is run again until it has been started this
    # many times (or its max_attempts, if larger); then it fails.
    "DBQ_RESCUE_MAX_ATTEMPTS": (5, WHOLE_NUMBER),
    # Recurring jobs: {"schedule name": {"job": "job name", "cron": "*/5 * * * *", ...}}.
    "DBQ_SCHEDULE": ({}, MAPPING),
    # Per-queue options: {"emails": {"concurrency": 5}} runs at most 5 jobs of "emails"
    # at once, {"api": {"rate": "100/m"}} starts at most 100 jobs of "api" a minute,
    # both counted over every worker on every host.
    "DBQ_QUEUES": ({}, QUEUES),
    # Errors kept on a job (oldest dropped) and the size of each traceback.
    "DBQ_ERROR_HISTORY": (10, WHOLE_NUMBER),
    "DBQ_TRACEBACK_CHARS": (4000, WHOLE_NUMBER),
}
DEFAULTS: dict[str, Any] = {name: default for name, (default, _) in SETTINGS.items()}

# A job definition's settings that default to a DBQ_* setting, and follow its rule.
JOB_SETTINGS = {
    "max_attempts": "DBQ_MAX_ATTEMPTS",
    "retry_backoff": "DBQ_RETRY_BACKOFF",
    "retry_delay": "DBQ_RETRY_DELAY",
    "retry_delay_max": "DBQ_RETRY_DELAY_MAX",
    "max_snoozes": "DBQ_MAX_SNOOZES",
}
# A job's time limit (and each step's): no setting, no limit by default.
TIMEOUT = POSITIVE_SECONDS


def require_whole_number(name: str, value: Any) -> None:
    """Raise ``ValueError`` unless ``value`` is a whole number of at least 1."""
    problem = WHOLE_NUMBER.problem(name, value)
    if problem:
        raise ValueError(problem)


def get(name: str) -> Any:
    """Return a setting's value, validated, falling back to its default."""
    default, rule = SETTINGS[name]
    value = getattr(django_settings, name, default)
    problem = rule.problem(name, value)
    if problem:
        raise ImproperlyConfigured(problem)
    return value


def queue_limits() -> dict[str, int]:
    """Each limited queue's name -> the most of its jobs that may run at once."""
    return {
        name: options["concurrency"]
        for name, options in get("DBQ_QUEUES").items()
        if "concurrency" in options
    }


def queue_rates() -> dict[str, float]:
    """Each rate-limited queue's name -> the fewest seconds between two of its job starts.

    A rate of N per period starts its jobs at least period/N apart, so that no span of
    one period ever holds more than N starts (a bucket of N tokens would allow 2N).
    """
    rates = {}
    for name, options in get("DBQ_QUEUES").items():
        if "rate" in options:
            starts, period = parse_rate(options["rate"])
            rates[name] = period / starts
    return rates


def job_rule(key: str) -> Rule:
    """What a job definition's ``key`` (``max_attempts``, ``timeout``...) must be."""
    return TIMEOUT if key == "timeout" else SETTINGS[JOB_SETTINGS[key]][1]


def job_default(key: str) -> Any:
    """A job definition's ``key`` when it does not set one: the ``DBQ_*`` setting's value."""
    return None if key == "timeout" else get(JOB_SETTINGS[key])


def jobs_setting() -> Any:
    """The raw ``JOBS`` setting (validated by :mod:`django_dbq.definitions`)."""
    return getattr(django_settings, "JOBS", {})
