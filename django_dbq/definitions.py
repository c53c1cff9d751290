"""The ``JOBS`` setting parsed into :class:`JobDefinition` objects, validated once.

Both forms are accepted::

    JOBS = {"short": ["app.jobs.one", "app.jobs.two"],
            "full": {"tasks": [...], "creation_hook": "...", "max_attempts": 3, ...}}

Parsing imports nothing: enqueueing must not load the workers' code. Paths are
imported only when a worker runs them (and by the system checks).
"""

from __future__ import annotations

import functools
import random
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from django.core.exceptions import ImproperlyConfigured
from django.core.signals import setting_changed
from django.dispatch import receiver
from django.utils.module_loading import import_string

from . import conf
from .exceptions import UnknownJob

HOOK_KEYS = ("creation_hook", "pre_task_hook", "post_task_hook", "failure_hook")
RETRY_KEYS = ("max_attempts", "retry_backoff", "retry_delay", "retry_delay_max")
KNOWN_KEYS = frozenset(("tasks", "timeout", "step_timeouts", *HOOK_KEYS, *RETRY_KEYS))
# Job names with this prefix are Django Tasks (see django_dbq.tasks_backend).
DJANGO_TASK_PREFIX = "django.tasks:"


class DefinitionError(ImproperlyConfigured):
    """One problem in ``JOBS``; ``check_id`` and ``hint`` feed the system checks."""

    def __init__(self, message: str, check_id: str, hint: str = ""):
        super().__init__(message)
        self.check_id = check_id
        self.hint = hint


@dataclass(frozen=True)
class JobDefinition:
    name: str
    tasks: tuple[str, ...]
    creation_hook: str | None = None
    pre_task_hook: str | None = None
    post_task_hook: str | None = None
    failure_hook: str | None = None
    max_attempts: int = 1
    retry_backoff: str = "exponential"
    retry_delay: float = 1.0
    retry_delay_max: float = 3600.0
    timeout: float | None = None
    # Per-step limits ({task path: seconds}) that override ``timeout`` for those steps.
    step_timeouts: tuple[tuple[str, float], ...] = ()
    # Django Tasks jobs run their step through this instead of calling the path.
    runner: Callable[[Any, str], Any] | None = field(default=None, compare=False)

    def next_task_after(self, current_task: str | None) -> str:
        """The task after ``current_task`` (the first one for None); ``""`` after the last."""
        if not current_task:
            return self.tasks[0]
        position = self.tasks.index(current_task)
        return self.tasks[position + 1] if position + 1 < len(self.tasks) else ""

    def retry_delay_for(self, attempt: int) -> float:
        """Seconds to wait before attempt ``attempt + 1``.

        Exponential: ``retry_delay * 2 ** (attempt - 1)`` capped at ``retry_delay_max``, then
        jittered to between half and all of that, so failed jobs do not retry in lockstep.
        """
        if self.retry_backoff == "fixed":
            return self.retry_delay
        doublings = min(max(attempt - 1, 0), 64)  # past that the cap applies anyway
        ceiling = min(self.retry_delay_max, self.retry_delay * 2.0**doublings)
        return random.uniform(ceiling / 2, ceiling)

    def timeout_for(self, step: str) -> float | None:
        """Seconds ``step`` may run before it is interrupted (None: no limit)."""
        for path, seconds in self.step_timeouts:
            if path == step:
                return seconds
        return self.timeout

    def hook(self, kind: str) -> Callable | None:
        path = getattr(self, kind)
        return load(path) if path else None


@functools.lru_cache(maxsize=1024)
def load(path: str) -> Callable:
    """Import a task or hook by its dotted path (cached: the hot path calls it per step)."""
    return import_string(path)


def _check_path(value: Any, what: str, job_name: str) -> str:
    if (
        not isinstance(value, str)
        or "." not in value
        or not value.strip()
        or value != value.strip()
    ):
        raise DefinitionError(
            f"JOBS[{job_name!r}]: {what} must be a dotted path string, not {value!r}.",
            "django_dbq.E003",
            "Write the import path of a function, for example 'myapp.jobs.send_email'.",
        )
    return value


def _number(options: dict, key: str, default: Any, job_name: str, *, integer=False, zero=True):
    value = options.get(key, default)
    if value is None and key == "timeout":
        return None
    bad = isinstance(value, bool) or not isinstance(value, int if integer else int | float)
    if bad or value < 0 or (not zero and value == 0):
        kind = "a whole number" if integer else "a number"
        raise DefinitionError(
            f"JOBS[{job_name!r}]: {key} must be {kind} {'above' if not zero else 'of at least'} 0,"
            f" not {value!r}.",
            "django_dbq.E005",
            f"Set {key} to {'an integer' if integer else 'a number of seconds'}, or remove it.",
        )
    return value


def parse_definition(name: Any, raw: Any) -> JobDefinition:
    """Validate one ``JOBS`` entry and return its definition (raises :class:`DefinitionError`)."""
    if not isinstance(name, str) or not name or len(name) > 100:
        raise DefinitionError(
            f"JOBS: job names must be non-empty strings of at most 100 characters, not {name!r}.",
            "django_dbq.E002",
            "Rename the job: a short string such as 'send_report'.",
        )
    if name.startswith(DJANGO_TASK_PREFIX):
        raise DefinitionError(
            f"JOBS: the prefix {DJANGO_TASK_PREFIX!r} is reserved for Django Tasks ({name!r}).",
            "django_dbq.E002",
            "Rename the job so that it does not start with that prefix.",
        )
    options = {"tasks": raw} if isinstance(raw, list | tuple) else raw
    if not isinstance(options, dict):
        raise DefinitionError(
            f"JOBS[{name!r}] must be a list of task paths or a dict, not {type(raw).__name__}.",
            "django_dbq.E002",
            'Use ["app.jobs.step"] or {"tasks": ["app.jobs.step"], ...}.',
        )
    unknown = sorted(set(options) - KNOWN_KEYS)
    if unknown:
        raise DefinitionError(
            f"JOBS[{name!r}] has unknown key(s): {', '.join(map(repr, unknown))}.",
            "django_dbq.E004",
            f"Known keys: {', '.join(sorted(KNOWN_KEYS))}.",
        )
    tasks = options.get("tasks")
    if not isinstance(tasks, list | tuple) or not tasks:
        raise DefinitionError(
            f"JOBS[{name!r}] needs a non-empty list of tasks.",
            "django_dbq.E002",
            'Add "tasks": ["app.jobs.step"].',
        )
    tasks = tuple(_check_path(task, "each task", name) for task in tasks)
    if len(set(tasks)) != len(tasks):
        raise DefinitionError(
            f"JOBS[{name!r}] lists the same task twice; steps are identified by their path.",
            "django_dbq.E002",
            "Wrap the function under a second name for the second step.",
        )
    hooks = {key: _check_path(options[key], key, name) for key in HOOK_KEYS if options.get(key)}
    step_timeouts = options.get("step_timeouts", {})
    if not isinstance(step_timeouts, dict) or set(step_timeouts) - set(tasks):
        raise DefinitionError(
            f"JOBS[{name!r}]: step_timeouts must map some of the job's task paths to seconds,"
            f" not {step_timeouts!r}.",
            "django_dbq.E005",
            'e.g. "step_timeouts": {"app.jobs.slow_step": 300}',
        )
    for path in step_timeouts:
        _number(step_timeouts, path, None, name, zero=False)
    backoff = options.get("retry_backoff", conf.get("DBQ_RETRY_BACKOFF"))
    if backoff not in ("exponential", "fixed"):
        raise DefinitionError(
            f"JOBS[{name!r}]: retry_backoff must be 'exponential' or 'fixed', not {backoff!r}.",
            "django_dbq.E005",
            "Set retry_backoff to 'exponential' (the default) or 'fixed'.",
        )
    return JobDefinition(
        name=name,
        tasks=tasks,
        max_attempts=_number(
            options, "max_attempts", conf.get("DBQ_MAX_ATTEMPTS"), name, integer=True, zero=False
        ),
        retry_backoff=backoff,
        retry_delay=_number(options, "retry_delay", conf.get("DBQ_RETRY_DELAY"), name),
        retry_delay_max=_number(options, "retry_delay_max", conf.get("DBQ_RETRY_DELAY_MAX"), name),
        timeout=_number(options, "timeout", None, name, zero=False),
        step_timeouts=tuple((path, seconds) for path, seconds in step_timeouts.items() if seconds),
        **hooks,
    )


def parse_jobs(raw: Any) -> tuple[dict[str, JobDefinition], list[DefinitionError]]:
    """Parse a whole ``JOBS`` setting; returns the good definitions and every problem found."""
    if not isinstance(raw, dict):
        return {}, [
            DefinitionError(
                f"JOBS must be a dict of job name -> tasks, not {type(raw).__name__}.",
                "django_dbq.E001",
                'Write JOBS = {"job_name": ["app.jobs.step_one", "app.jobs.step_two"]}.',
            )
        ]
    definitions, problems = {}, []
    for name, options in raw.items():
        try:
            definitions[name] = parse_definition(name, options)
        except DefinitionError as error:
            problems.append(error)
        except ImproperlyConfigured as error:
            # An invalid global default (DBQ_MAX_ATTEMPTS...) this entry relies on.
            problems.append(
                DefinitionError(
                    f"JOBS[{name!r}]: {error}",
                    "django_dbq.E008",
                    "Fix the DBQ_* setting, or set the value in the job's definition.",
                )
            )
    return definitions, problems


@functools.cache
def _parsed() -> dict[str, JobDefinition]:
    definitions, problems = parse_jobs(conf.jobs_setting())
    if problems:
        raise problems[0]
    return definitions


@receiver(setting_changed)
def _forget_parsed_jobs(*, setting: str, **kwargs: Any) -> None:
    if setting == "JOBS" or setting.startswith("DBQ_"):
        _parsed.cache_clear()


def get_definitions() -> dict[str, JobDefinition]:
    """All job definitions from ``JOBS`` (raises ``ImproperlyConfigured`` if it is invalid)."""
    return _parsed()


# Resolves Django Task job names; django_dbq.tasks_backend registers it when it loads.
_task_resolver: Callable[[str], JobDefinition] | None = None


def register_task_resolver(resolver: Callable[[str], JobDefinition]) -> None:
    """Let ``resolver`` define the jobs named ``DJANGO_TASK_PREFIX + ...`` (Django Tasks).

    The resolver must raise :class:`UnknownJob` for a name whose task no code registered,
    and import nothing for it: rows never choose code.
    """
    global _task_resolver
    _task_resolver = resolver


def get_definition(name: str) -> JobDefinition:
    """The definition for ``name``; raises :class:`UnknownJob` if there is none."""
    if name.startswith(DJANGO_TASK_PREFIX):
        if _task_resolver is None:
            raise UnknownJob(
                f"{name!r} names a Django Task, but no django_dbq Tasks backend is configured "
                "in TASKS."
            )
        return _task_resolver(name)
    try:
        return _parsed()[name]
    except KeyError:
        raise UnknownJob(f"No job named {name!r} in the JOBS setting.") from None
