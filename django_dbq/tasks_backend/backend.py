"""``DatabaseBackend``: Django Tasks stored as django_dbq jobs and run by ``manage.py worker``."""

from __future__ import annotations

import uuid
from typing import Any

from django.apps import apps
from django.core import checks
from django.db import router, transaction
from django.utils.module_loading import import_string

from . import registry
from .compat import (
    InvalidTask,
    Task,
    TaskResult,
    TaskResultDoesNotExist,
    task_enqueued,
)
from .config import POLICY_KEYS, ConfiguredBackend, clean_policy, concurrency_for
from .results import job_name, result_from_job
from .running import json_value

NAME_MAX_LENGTH = 255  # Job.name


class DatabaseBackend(ConfiguredBackend):
    """Stores each enqueued task as a :class:`~django_dbq.models.Job` row.

    ``TASKS = {"default": {"BACKEND": "django_dbq.tasks_backend.DatabaseBackend",
    "QUEUES": ["default"], "OPTIONS": {"max_attempts": 3}}}``
    """

    supports_defer = True
    supports_async_task = True
    supports_get_result = True
    supports_priority = True

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
                **concurrency_for(self, task, args, kwargs),
            )
            result = result_from_job(job, task=task)
            task_enqueued.send(type(self), task_result=result)
        return result

    def get_result(self, result_id: str) -> TaskResult:
        from ..models import Job  # (as in enqueue)

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
