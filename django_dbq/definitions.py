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
RETRY_KEYS = ("max_attempts", "retry_backoff", "retry_delay", "retry_delay_max", "max_snoozes")
KNOWN_KEYS = frozenset(("tasks", "timeout", "step_timeouts", *HOOK_KEYS, *RETRY_KEYS))
# Job names with this prefix are Django Tasks (see django_dbq.tasks_backend).
DJANGO_TASK_PREFIX = "django.tasks:"


class DefinitionError(ImproperlyConfigured):
    """One problem in ``JOBS``; ``check_id`` and ``hint`` feed the system checks.

    ``fatal`` problems make the entry unusable; the others (a malformed path) are
    reported by the checks but leave the job creatable.
    """

    def __init__(self, message: str, check_id: str, hint: str = "", *, fatal: bool = True):
        super().__init__(message)
        self.check_id = check_id
        self.hint = hint
        self.fatal = fatal


@dataclass(frozen=True)
class JobDefinition:
    name: str
    tasks: tuple[str, ...]
    creation_hook: str | None = None
    pre_task_hook: str | None = None
    post_task_hook: str | None = None
    failure_hook: str | None = None
    max_attempts: int = 1
    # RetryLater ("snooze") requests honoured per job; past that a snooze is a failed attempt.
    max_snoozes: int = 100
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
    try:
        return import_string(path)
    except ImportError as error:
        message = f"task or hook path {path!r} cannot be imported: {error}"
        raise type(error)(message, name=error.name, path=error.path) from error


def is_dotted_path(value: str) -> bool:
    """Does ``value`` look like an import path (``module.name``, no surrounding spaces)?"""
    return "." in value and bool(value.strip()) and value == value.strip()


class _EntryProblems:
    """Collects every problem of one ``JOBS`` entry, so the checks report them all at once.

    A malformed path (E003) does not keep the job from being created: a job needs its
    paths only when a worker runs it, and the worker fails it then with a clear error
    (test suites written for django-db-queue 3.x use placeholder paths). Every other
    problem makes the entry unusable.
    """

    def __init__(self, name: str):
        self.name = name
        self.found: list[DefinitionError] = []

    def add(self, message: str, check_id: str, hint: str, *, fatal: bool = True) -> None:
        problem = DefinitionError(f"JOBS[{self.name!r}]{message}", check_id, hint, fatal=fatal)
        self.found.append(problem)

    def path(self, value: Any, what: str) -> Any:
        if not isinstance(value, str) or not is_dotted_path(value):
            self.add(
                f": {what} must be a dotted path string, not {value!r}.",
                "django_dbq.E003",
                "Write the import path of a function, for example 'myapp.jobs.send_email'.",
                fatal=not isinstance(value, str),  # a row can hold any string
            )
        return value

    def number(self, options: dict, key: str, default: Any, *, integer=False, zero=True) -> Any:
        value = options.get(key, default)
        if value is None and key == "timeout":
            return None
        bad = isinstance(value, bool) or not isinstance(value, int if integer else int | float)
        if bad or value < 0 or (not zero and value == 0):
            kind = "a whole number" if integer else "a number"
            self.add(
                f": {key} must be {kind} {'above' if not zero else 'of at least'} 0,"
                f" not {value!r}.",
                "django_dbq.E005",
                f"Set {key} to {'an integer' if integer else 'a number of seconds'}, or remove it.",
            )
            return default
        return value

    @property
    def fatal(self) -> list[DefinitionError]:
        return [problem for problem in self.found if problem.fatal]


def inspect_definition(name: Any, raw: Any) -> tuple[JobDefinition | None, list[DefinitionError]]:
    """Every problem of one ``JOBS`` entry, and its definition unless one of them is fatal."""
    if not isinstance(name, str) or not name or len(name) > 100:
        message = (
            f"JOBS: job names must be non-empty strings of at most 100 characters, not {name!r}."
        )
        return None, [
            DefinitionError(
                message, "django_dbq.E002", "Rename the job: a short string such as 'send_report'."
            )
        ]
    if name.startswith(DJANGO_TASK_PREFIX):
        message = (
            f"JOBS: the prefix {DJANGO_TASK_PREFIX!r} is reserved for Django Tasks ({name!r})."
        )
        return None, [
            DefinitionError(
                message,
                "django_dbq.E002",
                "Rename the job so that it does not start with that prefix.",
            )
        ]
    problems = _EntryProblems(name)
    options = {"tasks": raw} if isinstance(raw, list | tuple) else raw
    if not isinstance(options, dict):
        problems.add(
            f" must be a list of task paths or a dict, not {type(raw).__name__}.",
            "django_dbq.E002",
            'Use ["app.jobs.step"] or {"tasks": ["app.jobs.step"], ...}.',
        )
        return None, problems.found
    unknown = sorted(set(options) - KNOWN_KEYS)
    if unknown:
        problems.add(
            f" has unknown key(s): {', '.join(map(repr, unknown))}.",
            "django_dbq.E004",
            f"Known keys: {', '.join(sorted(KNOWN_KEYS))}.",
        )
    tasks = options.get("tasks")
    if not isinstance(tasks, list | tuple) or not tasks:
        problems.add(
            " needs a non-empty list of tasks.",
            "django_dbq.E002",
            'Add "tasks": ["app.jobs.step"].',
        )
        tasks = ()
    tasks = tuple(problems.path(task, "each task") for task in tasks)
    if len(set(tasks)) != len(tasks):
        problems.add(
            " lists the same task twice; steps are identified by their path.",
            "django_dbq.E002",
            "Wrap the function under a second name for the second step.",
        )
    hooks = {key: problems.path(options[key], key) for key in HOOK_KEYS if options.get(key)}
    step_timeouts = options.get("step_timeouts", {})
    if not isinstance(step_timeouts, dict) or set(step_timeouts) - set(tasks):
        problems.add(
            f": step_timeouts must map some of the job's task paths to seconds,"
            f" not {step_timeouts!r}.",
            "django_dbq.E005",
            'e.g. "step_timeouts": {"app.jobs.slow_step": 300}',
        )
        step_timeouts = {}
    step_timeouts = {
        path: problems.number(step_timeouts, path, None, zero=False) for path in step_timeouts
    }
    backoff = options.get("retry_backoff", conf.get("DBQ_RETRY_BACKOFF"))
    if backoff not in ("exponential", "fixed"):
        problems.add(
            f": retry_backoff must be 'exponential' or 'fixed', not {backoff!r}.",
            "django_dbq.E005",
            "Set retry_backoff to 'exponential' (the default) or 'fixed'.",
        )
    definition = JobDefinition(
        name=name,
        tasks=tasks,
        max_snoozes=problems.number(
            options, "max_snoozes", conf.get("DBQ_MAX_SNOOZES"), integer=True
        ),
        max_attempts=problems.number(
            options, "max_attempts", conf.get("DBQ_MAX_ATTEMPTS"), integer=True, zero=False
        ),
        retry_backoff=backoff,
        retry_delay=problems.number(options, "retry_delay", conf.get("DBQ_RETRY_DELAY")),
        retry_delay_max=problems.number(
            options, "retry_delay_max", conf.get("DBQ_RETRY_DELAY_MAX")
        ),
        timeout=problems.number(options, "timeout", None, zero=False),
        step_timeouts=tuple((path, seconds) for path, seconds in step_timeouts.items() if seconds),
        **hooks,
    )
    return (None if problems.fatal else definition), problems.found


def parse_definition(name: Any, raw: Any) -> JobDefinition:
    """Validate one ``JOBS`` entry and return its definition.

    Raises the entry's first fatal :class:`DefinitionError`; malformed paths are not
    fatal (see :class:`_EntryProblems`): :func:`inspect_definition` lists them.
    """
    definition, problems = inspect_definition(name, raw)
    if definition is None:
        raise next(problem for problem in problems if problem.fatal)
    return definition


def parse_jobs(raw: Any) -> tuple[dict[str, JobDefinition], list[DefinitionError]]:
    """Parse a whole ``JOBS`` setting: the usable definitions, and every problem found."""
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
            definition, found = inspect_definition(name, options)
        except ImproperlyConfigured as error:
            # An invalid global default (DBQ_MAX_ATTEMPTS...) this entry relies on.
            definition, found = (
                None,
                [
                    DefinitionError(
                        f"JOBS[{name!r}]: {error}",
                        "django_dbq.E008",
                        "Fix the DBQ_* setting, or set the value in the job's definition.",
                    )
                ],
            )
        problems.extend(found)
        if definition is not None:
            definitions[name] = definition
    return definitions, problems


@functools.cache
def _parsed() -> tuple[dict[str, JobDefinition], dict[str, DefinitionError]]:
    """The usable definitions, and for each unusable entry the problem that stops it.

    One broken entry stops only its own jobs: the others can still be created and run
    (the system checks refuse to start a worker while any entry is broken).
    """
    raw = conf.jobs_setting()
    definitions, problems = parse_jobs(raw)
    if not isinstance(raw, dict):
        return {}, {"": problems[0]}
    broken = {}
    for name in raw:
        if name not in definitions:
            entry = parse_jobs({name: raw[name]})[1]
            broken[name] = next(problem for problem in entry if problem.fatal)
    return definitions, broken


@receiver(setting_changed)
def _forget_parsed_jobs(*, setting: str, **kwargs: Any) -> None:
    if setting == "JOBS" or setting.startswith("DBQ_"):
        _parsed.cache_clear()


def get_definitions() -> dict[str, JobDefinition]:
    """The usable job definitions of ``JOBS`` (the checks report the unusable ones)."""
    return _parsed()[0]


def defined_job_names() -> set[str]:
    """Every job name ``JOBS`` defines, usable or not."""
    raw = conf.jobs_setting()
    return set(raw) if isinstance(raw, dict) else set()


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
    definitions, broken = _parsed()
    if "" in broken:
        raise broken[""]  # JOBS itself is not a dict
    if name in broken:
        raise broken[name]
    try:
        return definitions[name]
    except KeyError:
        raise UnknownJob(f"No job named {name!r} in the JOBS setting.") from None
