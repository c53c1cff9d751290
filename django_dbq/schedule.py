"""Recurring jobs declared in ``DBQ_SCHEDULE``, enqueued by whichever worker sees a tick first.

    DBQ_SCHEDULE = {
        "nightly-report": {"job": "report", "cron": "0 3 * * *",
                           "workspace": {}, "queue_name": "default", "priority": 0,
                           "unique_key": "nightly"},  # optional: skip a tick while one waits
    }

Cron expressions are read with ``croniter`` in ``TIME_ZONE``. A schedule seen for
the first time starts at its next tick; ticks missed while no worker ran are not
replayed: the latest one is enqueued once.

Daylight saving, as cron does it: when the clocks go back, a time of day that comes
twice (``"30 1 * * *"``) runs once, at its first occurrence; schedules whose minute
or hour field is a wildcard (``"*/15 * * * *"``, ``"0 * * * *"``) are intervals and
run in both passes. When the clocks go forward, a time that does not exist that day
(``"30 2 * * *"`` in America/New_York) runs once, at the moment the clocks jump
(03:00), as croniter computes it.
"""

from __future__ import annotations

import copy
import datetime
import logging
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, NamedTuple

from django.db import DatabaseError, IntegrityError, transaction
from django.utils import timezone

from . import conf
from .definitions import DefinitionError, defined_job_names
from .exceptions import DuplicateJob
from .models import Job, Schedule

logger = logging.getLogger(__name__)

# Schedule.name's column holds up to this many characters; Job.unique_key's up to 200.
SCHEDULE_NAME_MAX_LENGTH = 100
UNIQUE_KEY_MAX_LENGTH = 200


@dataclass(frozen=True)
class ScheduleEntry:
    name: str
    job: str
    cron: str
    workspace: dict = field(default_factory=dict)
    queue_name: str = "default"
    priority: int = 0
    # With a key, a tick is skipped while the previous tick's job still waits or runs.
    unique_key: str | None = None

    def previous_tick(self, now: datetime.datetime) -> datetime.datetime:
        """The latest tick before ``now``; a repeated local time counts as its first occurrence.

        Only for time-of-day schedules (see :func:`is_interval`): their second pass of a
        repeated hour maps back to the tick already enqueued, so it runs once.
        """
        from croniter import croniter

        tick = croniter(self.cron, now).get_prev(datetime.datetime)
        return tick if is_interval(self.cron) else first_occurrence(tick)

    def next_tick(self, now: datetime.datetime) -> datetime.datetime:
        from croniter import croniter

        return croniter(self.cron, now).get_next(datetime.datetime)


# Aliases croniter accepts, and whether they repeat within the day.
INTERVAL_ALIASES = {"@hourly": True}


def is_interval(cron: str) -> bool:
    """True if the minute or hour field is a wildcard (``*``, ``*/n``): an interval schedule.

    As in cron, interval schedules run at each of their ticks in an hour that the clocks
    repeat; the others name times of day, which run once.
    """
    fields = cron.split()
    if len(fields) == 1:
        return INTERVAL_ALIASES.get(fields[0].lower(), False)
    return any(part.startswith("*") for part in fields[:2])


def first_occurrence(moment: datetime.datetime) -> datetime.datetime:
    """``moment`` itself, or, if it is the second pass of a repeated local time, the first."""
    earlier = moment.replace(fold=0)
    return earlier if earlier.utcoffset() != moment.utcoffset() else moment


class _Option(NamedTuple):
    default: Any
    valid: Callable[[Any, set[str]], bool]  # (value, the job names JOBS defines)
    problem: str  # formatted with the value
    hint: str


def _is_cron(value: Any, jobs: set[str]) -> bool:
    from croniter import croniter  # optional: parse_schedule first checks that it is installed

    return isinstance(value, str) and croniter.is_valid(value)


def _is_unique_key(value: Any, jobs: set[str]) -> bool:
    return value is None or isinstance(value, str) and 0 < len(value) <= UNIQUE_KEY_MAX_LENGTH


# An entry's options, checked in this order: its first problem is the one reported.
# A default of None for "cron" and "job" makes them required: None is not valid.
OPTIONS = {
    "cron": _Option(None, _is_cron, "{!r} is not a valid cron expression.", "e.g. '*/5 * * * *'"),
    "job": _Option(
        None,
        lambda value, jobs: isinstance(value, str) and value in jobs,
        "job {!r} is not defined in JOBS.",
        "Set 'job' to the name of a JOBS entry.",
    ),
    "workspace": _Option(
        {},
        lambda value, jobs: isinstance(value, dict),
        "workspace must be a dict.",
        'e.g. {"key": 1}',
    ),
    "queue_name": _Option(
        "default",
        lambda value, jobs: conf.is_queue_name(value),
        "queue_name {!r} is invalid.",
        f"Use 1 to {conf.QUEUE_NAME_MAX_LENGTH} characters.",
    ),
    "priority": _Option(
        0,
        lambda value, jobs: isinstance(value, int) and not isinstance(value, bool),
        "priority {!r} is invalid.",
        "Use a whole number.",
    ),
    "unique_key": _Option(
        None,
        _is_unique_key,
        "unique_key {!r} is invalid.",
        f"Use 1 to {UNIQUE_KEY_MAX_LENGTH} characters.",
    ),
}
SCHEDULE_KEYS = frozenset(OPTIONS)


def _problem(name: Any, message: str, hint: str = "") -> DefinitionError:
    return DefinitionError(f"DBQ_SCHEDULE[{name!r}]: {message}", "django_dbq.E007", hint)


def parse_entry(name: Any, options: Any, jobs: set[str]) -> ScheduleEntry | DefinitionError:
    """One ``DBQ_SCHEDULE`` entry, or its first problem (``jobs``: the names ``JOBS`` defines)."""
    if not isinstance(name, str) or not 0 < len(name) <= SCHEDULE_NAME_MAX_LENGTH:
        message = f"names must be strings of 1 to {SCHEDULE_NAME_MAX_LENGTH} characters."
        return _problem(name, message, "Rename it.")
    if not isinstance(options, dict):
        hint = '{"job": "job_name", "cron": "*/5 * * * *"}'
        return _problem(name, "must be a dict with 'job' and 'cron'.", hint)
    unknown = sorted(set(options) - SCHEDULE_KEYS)
    if unknown:
        return _problem(name, f"unknown key(s) {unknown}.", f"Known: {sorted(SCHEDULE_KEYS)}")
    values = {}
    for key, option in OPTIONS.items():
        value = options.get(key, option.default)
        if not option.valid(value, jobs):
            return _problem(name, option.problem.format(value), option.hint)
        values[key] = value
    return ScheduleEntry(name=name, **values)


def parse_schedule(raw: Any) -> tuple[list[ScheduleEntry], list[DefinitionError]]:
    """Validate ``DBQ_SCHEDULE``; returns the good entries and every problem found."""
    if not isinstance(raw, dict):
        return [], [
            DefinitionError(
                "DBQ_SCHEDULE must be a dict.",
                "django_dbq.E007",
                'Write DBQ_SCHEDULE = {"name": {"job": "job_name", "cron": "0 3 * * *"}}.',
            )
        ]
    if not raw:
        return [], []
    try:
        import croniter  # noqa: F401
    except ImportError:
        return [], [
            DefinitionError(
                "DBQ_SCHEDULE needs the croniter package.",
                "django_dbq.E007",
                "pip install 'django-dbq[cron]'",
            )
        ]
    jobs = defined_job_names()  # a broken entry is the JOBS checks' to report
    parsed = [parse_entry(name, options, jobs) for name, options in raw.items()]
    entries = [entry for entry in parsed if isinstance(entry, ScheduleEntry)]
    return entries, [problem for problem in parsed if isinstance(problem, DefinitionError)]


def _now() -> datetime.datetime:
    return timezone.localtime() if timezone.is_aware(timezone.now()) else datetime.datetime.now()


class Scheduler:
    """Enqueues each entry's latest due tick once, across all workers."""

    def __init__(self, using: str = "default"):
        self.using = using
        self.not_before: dict[str, datetime.datetime] = {}

    def enqueue_due(self) -> int:
        raw = conf.get("DBQ_SCHEDULE")
        if not raw:
            return 0
        entries, problems = parse_schedule(raw)
        for problem in problems:
            logger.error("Skipping a schedule: %s", problem)
        now, enqueued = _now(), 0
        for entry in entries:
            if now < self.not_before.get(entry.name, now):
                continue
            try:
                enqueued += self.enqueue_tick(entry, entry.previous_tick(now))
            except DatabaseError:
                raise  # the tick is not settled: the next maintenance tick tries again
            except Exception:
                # A creation hook that raises, say: log it once per tick, keep the others going.
                logger.exception("Schedule %s: could not enqueue its job", entry.name)
            self.not_before[entry.name] = entry.next_tick(now)
        return enqueued

    def seconds_until_due(self) -> float | None:
        """Seconds until the next tick of any schedule seen so far (None: none known)."""
        if not self.not_before:
            return None
        return (min(self.not_before.values()) - _now()).total_seconds()

    def enqueue_tick(self, entry: ScheduleEntry, tick: datetime.datetime) -> int:
        """Enqueue ``entry``'s job for ``tick`` unless some worker already did; returns 0 or 1."""
        rows = Schedule.objects.using(self.using)
        with transaction.atomic(using=self.using):
            # The conditional UPDATE comes first: on SQLite it takes the write lock at once.
            if rows.filter(name=entry.name, last_tick__lt=tick).update(last_tick=tick):
                job = Job(
                    name=entry.job,
                    workspace=copy.deepcopy(entry.workspace),
                    queue_name=entry.queue_name,
                    priority=entry.priority,
                    unique_key=entry.unique_key,
                )
                try:
                    job.save(using=self.using)
                except DuplicateJob as duplicate:
                    # The tick is used up all the same: no pile-up of runs behind a slow one.
                    logger.info(
                        "Schedule %s tick %s skipped: job %s has not finished yet",
                        entry.name,
                        tick,
                        duplicate.existing_job and duplicate.existing_job.pk,
                    )
                    return 0
                logger.info("Enqueued %s for schedule %s tick %s", job.pk, entry.name, tick)
                return 1
            if not rows.filter(name=entry.name).exists():
                try:
                    with transaction.atomic(using=self.using):
                        rows.create(name=entry.name, last_tick=tick)
                except IntegrityError:
                    pass  # another worker saw the new schedule first
        return 0
