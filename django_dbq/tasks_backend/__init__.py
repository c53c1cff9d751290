"""Django's Tasks framework (``django.tasks``, or the ``django_tasks`` backport) on django_dbq.

``TASKS = {"default": {"BACKEND": "django_dbq.tasks_backend.DatabaseBackend"}}``: each
enqueued task is a ``Job`` row, run by ``manage.py worker`` with the same claims,
leases, rescue and retries as native jobs. See docs/tasks.md.
"""

from .backend import DatabaseBackend, DatabaseTask
from .running import InvalidReturnValue, NotATask, WorkerLost, task_definition

__all__ = [
    "DatabaseBackend",
    "DatabaseTask",
    "InvalidReturnValue",
    "NotATask",
    "WorkerLost",
    "task_definition",
]
