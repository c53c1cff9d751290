"""``DatabaseBackend``: Django Tasks stored as django_dbq jobs and run by ``manage.py worker``."""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from typing import Any

from django.apps import apps
from django.core import checks
from django.core.exceptions import ImproperlyConfigured
from django.db import router, transaction
from django.utils.module_loading import import_string

from .. import conf
from . import registry
from .compat import (
    BaseTaskBackend,
    InvalidTask,
    Task,
    TaskResult,
    TaskResultDoesNotExist,
    task_enqueued,
)
from .running import job_name, json_value, result_from_job

# Retry and timeout settings: backend OPTIONS and DatabaseTask fields, same meaning as in JOBS.
POLICY_KEYS = ("max_attempts", "retry_backoff", "retry_delay", "retry_delay_max", "timeout")
NAME_MAX_LENGTH = 255  # Job.name


def _is_number(value: Any) -> bool:
    return not isinstance(value, bool) and isinstance(value, int | float)


def clean_policy(values: dict, where: str, error: type[Exception]) -> dict:
    """The retry settings present in ``values`` (None means "not set"), validated."""
    policy = {}
    for key in POLICY_KEYS:
        value = values.get(key)
        if value is None:
            continue
        if key == "max_attempts":
            good = conf.is_whole_number(value)
            wanted = "a whole number of at least 1"
        elif key == "retry_backoff":
            good, wanted = value in ("exponential", "fixed"), "'exponential' or 'fixed'"
        elif key == "retry_delay":
            good, wanted = _is_number(value) and value >= 0, "a number of seconds of at least 0"
        else:
            good, wanted = _is_number(value) and value > 0, "a number of seconds above 0"
        if not good:
            raise error(f"{where}: {key} must be {wanted}, not {value!r}.")
        policy[key] = value
    return policy


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


class DatabaseBackend(BaseTaskBackend):
    """Stores each enqueued task as a :class:`~django_dbq.models.Job` row.

    ``TASKS = {"default": {"BACKEND": "django_dbq.tasks_backend.DatabaseBackend",
    "QUEUES": ["default"], "OPTIONS": {"max_attempts": 3}}}``
    """

    task_class = DatabaseTask
    supports_defer = True
    supports_async_task = True
    supports_get_result = True
    supports_priority = True

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
        for path, values in per_task.items():
            here = f"{where}['tasks'][{path!r}]"
            if not isinstance(values, dict):
                raise ImproperlyConfigured(f"{here} must be a dict.")
            _check_keys(values, POLICY_KEYS, here)
            self.task_policies[path] = clean_policy(values, here, ImproperlyConfigured)

    # -- validation -------------------------------------------------------------

    def validate_task(self, task: Task) -> None:
        super().validate_task(task)
        if len(job_name(self.alias, task.module_path)) > NAME_MAX_LENGTH:
            raise InvalidTask(f"The module path of {task.module_path!r} is too long to store.")
        clean_policy(
            {key: getattr(task, key, None) for key in POLICY_KEYS},
            f"Task {task.module_path!r}",
            InvalidTask,
        )
        # ``@task`` calls this when a task is defined: the workers run only tasks recorded here.
        registry.register(task)

    def policy_for(self, task: Task) -> dict:
        """Retry settings for ``task``, first found: its ``@task`` arguments, its entry in
        ``OPTIONS["tasks"]``, ``OPTIONS``, the ``DBQ_*`` settings."""
        policy = {
            "max_attempts": conf.get("DBQ_MAX_ATTEMPTS"),
            "retry_backoff": conf.get("DBQ_RETRY_BACKOFF"),
            "retry_delay": conf.get("DBQ_RETRY_DELAY"),
            "retry_delay_max": conf.get("DBQ_RETRY_DELAY_MAX"),
            "timeout": None,
        }
        policy.update(self.policy)
        policy.update(self.task_policies.get(task.module_path, {}))
        policy.update(
            (key, getattr(task, key)) for key in POLICY_KEYS if getattr(task, key, None) is not None
        )
        return policy

    def _check_importable(self, task: Task) -> None:
        # Workers find a task by its module path alone: refuse what they could not find.
        try:
            found = import_string(task.module_path)
        except Exception:
            found = None
        if not isinstance(found, Task) or found.func is not task.func:
            raise InvalidTask(
                f"{task.module_path!r} does not name this Task, and workers import tasks by that "
                "path: apply @task where the function is defined, under the function's own name."
            )

    # -- the Tasks API ----------------------------------------------------------

    def enqueue(self, task: Task, args: Any, kwargs: Any) -> TaskResult:
        self.validate_task(task)
        self._check_importable(task)
        try:
            workspace = {"args": json_value(list(args)), "kwargs": json_value(dict(kwargs))}
        except (TypeError, ValueError) as error:
            raise TypeError(
                f"Arguments of task {task.module_path!r} must be JSON-serialisable: {error}"
            ) from None
        from ..models import Job  # not at import time: @task may run while apps load

        using = router.db_for_write(Job)
        # One atomic block: if a task_enqueued receiver raises, nothing is enqueued.
        with transaction.atomic(using=using):
            job = Job.objects.using(using).create(
                name=job_name(self.alias, task.module_path),
                workspace=workspace,
                queue_name=task.queue_name,
                priority=task.priority,
                run_after=task.run_after,
            )
            result = result_from_job(job, task=task)
            task_enqueued.send(type(self), task_result=result)
        return result

    def get_result(self, result_id: str) -> TaskResult:
        from ..models import Job

        try:
            pk = uuid.UUID(str(result_id))
        except ValueError:
            raise TaskResultDoesNotExist(result_id) from None
        job = Job.objects.filter(pk=pk, name__startswith=job_name(self.alias, "")).first()
        if job is None:
            raise TaskResultDoesNotExist(result_id)
        return result_from_job(job)

    def check(self, **kwargs: Any) -> list[checks.CheckMessage]:
        if not apps.is_installed("django_dbq"):
            return [
                checks.Error(
                    f"TASKS[{self.alias!r}] uses django_dbq's DatabaseBackend, but django_dbq is "
                    "not in INSTALLED_APPS.",
                    hint='Add "django_dbq" to INSTALLED_APPS and run migrate.',
                    id="django_dbq.E020",
                )
            ]
        errors = []
        try:
            registry.discover()  # the backends in TASKS, as a worker would
            registry.discover(list(self.task_modules))
        except Exception as error:  # a tasks module that does not import: workers would fail
            errors.append(
                checks.Error(
                    f"TASKS[{self.alias!r}]: importing the modules with Django Tasks failed: "
                    f"{type(error).__name__}: {error}",
                    hint="Fix the module, or its entry in OPTIONS['task_modules'].",
                    id="django_dbq.E022",
                )
            )
        for path in self.task_policies:
            if registry.registered(path) is None:
                errors.append(
                    checks.Error(
                        f"TASKS[{self.alias!r}]['OPTIONS']['tasks']: {path!r} is not a registered "
                        "Django Task.",
                        hint="Keys are the module paths of @task functions in the tasks module "
                        "of an installed app or in OPTIONS['task_modules'].",
                        id="django_dbq.E021",
                    )
                )
        return errors
