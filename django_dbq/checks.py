"""System checks, run by ``manage.py check`` and before ``manage.py worker`` starts.

======================  ==============================================================
``django_dbq.E001``     ``JOBS`` is not a dict.
``django_dbq.E002``     A ``JOBS`` entry is malformed (bad name, no tasks, repeated task).
``django_dbq.E003``     A task or hook path is not a dotted path string.
``django_dbq.E004``     A ``JOBS`` entry has keys this app does not know.
``django_dbq.E005``     Invalid ``max_attempts``, ``retry_*`` or ``timeout`` in an entry.
``django_dbq.E006``     A task or hook path does not import, or is not callable.
``django_dbq.E007``     ``DBQ_SCHEDULE`` is malformed (bad cron, unknown job, ...).
``django_dbq.E008``     A ``DBQ_*`` setting has an invalid value.
======================  ==============================================================

Every error carries a hint saying how to fix it.
"""

from __future__ import annotations

from typing import Any

from django.core.checks import Error
from django.core.exceptions import ImproperlyConfigured
from django.utils.module_loading import import_string

from . import conf
from .job_definition import HOOK_KEYS, DefinitionError
from .jobs_setting import is_dotted_path, parse_jobs
from .schedule import parse_schedule

IMPORT_HINT = "Check the module and function names, and that the module imports cleanly."


def _error(problem: DefinitionError) -> Error:
    return Error(
        str(problem), hint=problem.hint or "See the django_dbq README.", id=problem.check_id
    )


def _import_problem(path: str, where: str) -> Error | None:
    try:
        target = import_string(path)
    except ImportError as error:
        return Error(
            f"{where}: {path!r} cannot be imported ({error}).",
            hint=IMPORT_HINT,
            id="django_dbq.E006",
        )
    except Exception as error:  # a module that raises while importing
        return Error(
            f"{where}: importing {path!r} raised {type(error).__name__}: {error}.",
            hint=IMPORT_HINT,
            id="django_dbq.E006",
        )
    if not callable(target):
        return Error(
            f"{where}: {path!r} is not callable.",
            hint="Point the path at a function (tasks take a job; hooks as documented).",
            id="django_dbq.E006",
        )
    return None


def check_jobs(app_configs: Any = None, **kwargs: Any) -> list[Error]:
    """``JOBS`` is well formed and every task and hook path imports a callable."""
    definitions, problems = parse_jobs(conf.jobs_setting())
    # Invalid DBQ_* defaults (E008) are reported once, by check_settings.
    errors = [_error(problem) for problem in problems if problem.check_id != "django_dbq.E008"]
    for definition in definitions.values():
        paths = [(task, "task") for task in definition.tasks]
        paths += [(getattr(definition, key), key) for key in HOOK_KEYS if getattr(definition, key)]
        for path, what in paths:
            if is_dotted_path(path):  # a malformed one is reported as E003 already
                errors.append(_import_problem(path, f"JOBS[{definition.name!r}] {what}"))
    return [error for error in errors if error is not None]


def check_settings(app_configs: Any = None, **kwargs: Any) -> list[Error]:
    """Every ``DBQ_*`` setting has a valid value, and ``DBQ_SCHEDULE`` is well formed."""
    errors = []
    for name in conf.DEFAULTS:
        try:
            conf.get(name)
        except ImproperlyConfigured as error:
            errors.append(
                Error(str(error), hint=f"Remove {name} to use its default.", id="django_dbq.E008")
            )
    try:
        schedule = conf.get("DBQ_SCHEDULE")
    except ImproperlyConfigured:
        return errors
    return errors + [_error(problem) for problem in parse_schedule(schedule)[1]]
