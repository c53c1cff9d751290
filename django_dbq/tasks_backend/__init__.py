"""Django's Tasks framework (``django.tasks``, or the ``django_tasks`` backport) on django_dbq.

``TASKS = {"default": {"BACKEND": "django_dbq.tasks_backend.DatabaseBackend"}}``: each
enqueued task is a ``Job`` row, run by ``manage.py worker`` with the same claims,
leases, rescue and retries as native jobs. See docs/tasks.md.

:func:`register` hands ``get_definition`` the resolver for task job names. django_dbq's
core never imports this package: its ``AppConfig.ready()`` loads it and calls
:func:`register` when ``TASKS`` uses it.
"""

from ..definitions import register_task_resolver
from .backend import DatabaseBackend
from .config import DatabaseTask
from .registry import NotATask, UnregisteredTask
from .results import DatabaseTaskResult, WorkerLost
from .running import task_definition


def register() -> None:
    """Let every part of django_dbq (a worker, the admin) resolve task jobs' names."""
    register_task_resolver(task_definition)


__all__ = [
    "DatabaseBackend",
    "DatabaseTask",
    "DatabaseTaskResult",
    "NotATask",
    "UnregisteredTask",
    "WorkerLost",
    "register",
    "task_definition",
]
