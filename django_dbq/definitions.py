"""Every job's definition by name: the ``JOBS`` entries, and the jobs registered resolvers define.

``JOBS`` is parsed once (:mod:`django_dbq.jobs_setting`) and parsed again when a test
changes it. Names with :data:`DJANGO_TASK_PREFIX` are Django Tasks: the Tasks backend
registers their resolver when it loads; this module never imports it.

The definition types and the parser live in their own modules; their names are
importable from here too, as they always were.
"""

from __future__ import annotations

import functools
from collections.abc import Callable
from typing import Any

from django.core.signals import setting_changed
from django.dispatch import receiver

from . import conf
from .exceptions import UnknownJob
from .job_definition import (
    DJANGO_TASK_PREFIX,
    HOOK_KEYS,
    DefinitionError,
    JobDefinition,
    load,
)
from .jobs_setting import (
    KNOWN_KEYS,
    inspect_definition,
    is_dotted_path,
    parse_definition,
    parse_jobs,
)

__all__ = [
    "DJANGO_TASK_PREFIX",
    "HOOK_KEYS",
    "KNOWN_KEYS",
    "DefinitionError",
    "JobDefinition",
    "defined_job_names",
    "get_definition",
    "get_definitions",
    "inspect_definition",
    "is_dotted_path",
    "load",
    "parse_definition",
    "parse_jobs",
    "register_task_resolver",
]


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
    # Definitions hold the DBQ_* defaults of when they were parsed.
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
