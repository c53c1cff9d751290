"""What a django_dbq Tasks backend's ``OPTIONS`` say, and which backends in ``TASKS`` are ours.

:class:`ConfiguredBackend` is the part of :class:`~.backend.DatabaseBackend` that
the task registry (its ``task_modules``) and the worker (a task's retry policy)
need; ``DatabaseBackend`` adds the Tasks API (enqueue, results, checks) on top.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from django.conf import settings
from django.core.exceptions import ImproperlyConfigured

from .. import conf
from .compat import BaseTaskBackend, Task, task_backends

# Retry and timeout settings: backend OPTIONS and DatabaseTask fields, same meaning as in JOBS.
POLICY_KEYS = ("max_attempts", "retry_backoff", "retry_delay", "retry_delay_max", "timeout")
# Concurrency keys (django_dbq.keys), per task: OPTIONS["tasks"][path] and DatabaseTask fields.
KEY_OPTIONS = ("concurrency_key", "concurrency_per_key")


def clean_policy(values: dict, where: str, error: type[Exception]) -> dict:
    """The retry settings present in ``values`` (None means "not set"), validated."""
    policy = {}
    for key in POLICY_KEYS:
        value = values.get(key)
        if value is None:
            continue
        problem = conf.job_rule(key).problem(key, value)
        if problem:
            raise error(f"{where}: {problem}")
        policy[key] = value
    return policy


def clean_key_options(values: Any, where: str, error: type[Exception]) -> dict:
    """The concurrency key options present in ``values``, validated.

    ``concurrency_key`` is a template the call's arguments fill in (``str.format``):
    ``"account:{account_id}"``; ``concurrency_per_key`` the most running at once per key.
    """
    template = _get(values, "concurrency_key")
    per_key = _get(values, "concurrency_per_key")
    if template is not None and (not isinstance(template, str) or not template):
        raise error(f"{where}: concurrency_key must be a non-empty string, not {template!r}.")
    if per_key is not None:
        if template is None:
            raise error(f"{where}: concurrency_per_key needs a concurrency_key.")
        problem = conf.WHOLE_NUMBER.problem("concurrency_per_key", per_key)
        if problem:
            raise error(f"{where}: {problem}")
    return {"concurrency_key": template, "concurrency_per_key": per_key} if template else {}


def _get(values: Any, key: str) -> Any:
    return values.get(key) if isinstance(values, dict) else getattr(values, key, None)


def _check_keys(values: dict, known: tuple[str, ...], where: str) -> None:
    unknown = sorted(set(values) - set(known))
    if unknown:
        raise ImproperlyConfigured(
            f"{where} has unknown key(s) {', '.join(map(repr, unknown))}; "
            f"known keys: {', '.join(known)}."
        )


@dataclass(frozen=True, slots=True, kw_only=True)
class DatabaseTask(Task):
    """The backend's ``task_class``: ``@task`` accepts these retry settings per task.

    ``@task(max_attempts=5, retry_backoff="fixed", retry_delay=30)``; unset (None)
    falls back to the backend's OPTIONS, then to the ``DBQ_*`` settings.
    """

    max_attempts: int | None = None
    retry_backoff: str | None = None
    retry_delay: float | None = None
    retry_delay_max: float | None = None
    timeout: float | None = None
    # A concurrency key filled in from each call's arguments, "account:{account_id}",
    # and the most running at once per key (1 if unset): see django_dbq.keys.
    concurrency_key: str | None = None
    concurrency_per_key: int | None = None


class ConfiguredBackend(BaseTaskBackend):
    """A Tasks backend configured by django_dbq's ``OPTIONS`` (retry settings, task modules)."""

    task_class = DatabaseTask

    def __init__(self, alias: str, params: dict) -> None:
        super().__init__(alias, params)
        where = f"TASKS[{alias!r}]['OPTIONS']"
        if not isinstance(self.options, dict):
            raise ImproperlyConfigured(f"{where} must be a dict.")
        _check_keys(self.options, (*POLICY_KEYS, "tasks", "task_modules"), where)
        self.policy = clean_policy(self.options, where, ImproperlyConfigured)
        # Modules with @task definitions besides the installed apps' ``tasks`` modules.
        self.task_modules = self.options.get("task_modules") or []
        if not isinstance(self.task_modules, list | tuple) or not all(
            isinstance(module, str) and module for module in self.task_modules
        ):
            raise ImproperlyConfigured(f"{where}['task_modules'] must be a list of module paths.")
        # Per-task settings by module path: unlike @task(max_attempts=...), these leave
        # the task definitions portable to other backends (say, ImmediateBackend in tests).
        per_task = self.options.get("tasks") or {}
        if not isinstance(per_task, dict):
            raise ImproperlyConfigured(f"{where}['tasks'] must be a dict of module path -> dict.")
        self.task_policies = {}
        self.task_keys: dict[str, dict] = {}
        for path, values in per_task.items():
            here = f"{where}['tasks'][{path!r}]"
            if not isinstance(values, dict):
                raise ImproperlyConfigured(f"{here} must be a dict.")
            _check_keys(values, (*POLICY_KEYS, *KEY_OPTIONS), here)
            self.task_policies[path] = clean_policy(values, here, ImproperlyConfigured)
            self.task_keys[path] = clean_key_options(values, here, ImproperlyConfigured)

    def policy_for(self, task: Task) -> dict:
        """Retry settings for ``task``, first found: its ``@task`` arguments, its entry in
        ``OPTIONS["tasks"]``, ``OPTIONS``, the ``DBQ_*`` settings."""
        policy = {key: conf.job_default(key) for key in POLICY_KEYS}
        policy.update(self.policy)
        policy.update(self.task_policies.get(task.module_path, {}))
        policy.update(
            (key, getattr(task, key)) for key in POLICY_KEYS if getattr(task, key, None) is not None
        )
        return policy


def concurrency_for(backend: ConfiguredBackend, task: Task, args: Any, kwargs: Any) -> dict:
    """The ``concurrency_key`` and ``concurrency_limit`` of a job for this call of ``task``
    (empty if the task has no key); ``ValueError`` if the call lacks an argument the
    key names."""
    where = f"Task {task.module_path!r}"
    options = clean_key_options(task, where, ValueError) or backend.task_keys.get(
        task.module_path, {}
    )
    if not options:
        return {}
    template = options["concurrency_key"]
    try:
        key = template.format(*args, **kwargs)
    except (KeyError, IndexError, AttributeError) as error:
        raise ValueError(
            f"{where}: its concurrency_key {template!r} names {error}, which this call does "
            "not pass (name the argument in the call)."
        ) from None
    return {"concurrency_key": key, "concurrency_limit": options["concurrency_per_key"] or 1}


def configured_modules() -> list[str]:
    """``OPTIONS["task_modules"]`` of every django_dbq backend in ``TASKS``."""
    modules = []
    for alias in getattr(settings, "TASKS", {}) or {}:
        backend = task_backends[alias]
        if isinstance(backend, ConfiguredBackend):
            modules.extend(module for module in backend.task_modules if module not in modules)
    return modules
