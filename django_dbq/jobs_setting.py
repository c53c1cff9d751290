"""The ``JOBS`` setting parsed into :class:`JobDefinition` objects, validated once.

Both forms are accepted::

    JOBS = {"short": ["app.jobs.one", "app.jobs.two"],
            "full": {"tasks": [...], "creation_hook": "...", "max_attempts": 3, ...}}

The short form is django-db-queue 3.x's, kept for django-db-queue 3.x compatibility.
Parsing imports nothing: enqueueing must not load the workers' code. Paths are
imported only when a worker runs them (and by the system checks).
"""

from __future__ import annotations

from typing import Any

from django.core.exceptions import ImproperlyConfigured

from . import conf
from .job_definition import DJANGO_TASK_PREFIX, HOOK_KEYS, DefinitionError, JobDefinition

POLICY_KEYS = (*conf.JOB_SETTINGS, "timeout")
KNOWN_KEYS = frozenset(("tasks", "step_timeouts", "concurrency_per_key", *HOOK_KEYS, *POLICY_KEYS))
# The longest job name a JOBS entry may have.
NAME_MAX_LENGTH = 100


def is_dotted_path(value: str) -> bool:
    """Does ``value`` look like an import path (``module.name``, no surrounding spaces)?"""
    return "." in value and bool(value.strip()) and value == value.strip()


class _EntryProblems:
    """Collects every problem of one ``JOBS`` entry, so the checks report them all at once.

    A malformed path (E003) does not keep the job from being created: a job needs its
    paths only when a worker runs it, and the worker fails it then with a clear error.
    Kept for django-db-queue 3.x compatibility: its users' test suites create jobs
    whose tasks are placeholder paths. Every other problem makes the entry unusable.
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

    def follows(self, rule: conf.Rule, key: str, value: Any) -> bool:
        """Does ``value`` follow ``rule``? If not, the entry has an E005 problem."""
        problem = rule.problem(key, value)
        if problem:
            self.add(
                f": {problem}", "django_dbq.E005", f"Set {key} to {rule.wanted}, or remove it."
            )
        return problem is None

    def policy(self, options: dict) -> dict[str, Any]:
        """The retry and timeout settings the entry sets (and gets right).

        The others come from the ``DBQ_*`` settings when the definition is made.
        """
        return {
            key: options[key]
            for key in POLICY_KEYS
            if key in options
            and not (key == "timeout" and options[key] is None)  # None: no limit, the default
            and self.follows(conf.job_rule(key), key, options[key])
        }

    @property
    def fatal(self) -> list[DefinitionError]:
        return [problem for problem in self.found if problem.fatal]


def _misnamed(name: Any) -> DefinitionError | None:
    if not isinstance(name, str) or not name or len(name) > NAME_MAX_LENGTH:
        return DefinitionError(
            f"JOBS: job names must be non-empty strings of at most {NAME_MAX_LENGTH} characters,"
            f" not {name!r}.",
            "django_dbq.E002",
            "Rename the job: a short string such as 'send_report'.",
        )
    if name.startswith(DJANGO_TASK_PREFIX):
        return DefinitionError(
            f"JOBS: the prefix {DJANGO_TASK_PREFIX!r} is reserved for Django Tasks ({name!r}).",
            "django_dbq.E002",
            "Rename the job so that it does not start with that prefix.",
        )
    return None


def inspect_definition(name: Any, raw: Any) -> tuple[JobDefinition | None, list[DefinitionError]]:
    """Every problem of one ``JOBS`` entry, and its definition unless one of them is fatal."""
    misnamed = _misnamed(name)
    if misnamed:
        return None, [misnamed]
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
    step_timeouts = tuple(
        (path, seconds)
        for path, seconds in step_timeouts.items()
        if problems.follows(conf.TIMEOUT, f"step_timeouts[{path!r}]", seconds)
    )
    policy = problems.policy(options)
    per_key = options.get("concurrency_per_key", 1)
    if problems.follows(conf.WHOLE_NUMBER, "concurrency_per_key", per_key):
        policy["concurrency_per_key"] = per_key
    if problems.fatal:
        return None, problems.found
    definition = JobDefinition(
        name=name, tasks=tasks, step_timeouts=step_timeouts, **hooks, **policy
    )
    return definition, problems.found


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
