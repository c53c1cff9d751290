"""The Django Tasks this process's code defined for django_dbq: the only tasks a row may name.

A task job's row names its task by module path, and rows never choose code: the
path is looked up here, never imported. ``@task`` (through the backend's
``validate_task``) records every ``Task`` defined for a :class:`DatabaseBackend`.
Tasks defined in modules that this process has not imported yet are found by
discovery, which imports only modules the project configured: the ``tasks`` module
of each installed app and the modules listed in a backend's
``OPTIONS["task_modules"]``. A path found in neither fails with
:class:`UnregisteredTask`, and nothing is imported for it.
"""

from __future__ import annotations

import logging
import threading
from importlib import import_module

from django.utils.module_loading import autodiscover_modules

from ..exceptions import UnknownJob
from .compat import InvalidTask, Task
from .config import configured_modules

logger = logging.getLogger(__name__)

_tasks: dict[str, Task] = {}
_discovery = threading.RLock()  # a tasks module may look a task up while it imports
_discovered = False


class NotATask(InvalidTask):
    """A stored row names something that is not a Django ``Task``; it is never called."""


class UnregisteredTask(NotATask, UnknownJob):
    """A task job names a module path that no code registered as a Task: nothing is imported."""

    def __str__(self) -> str:
        return str(self.args[0]) if self.args else "unregistered task"


def register(task: Task) -> None:
    """Record ``task`` under its module path (``DatabaseBackend.validate_task`` calls this).

    Copies made by ``Task.using()`` share the function and keep the first entry; a
    module imported again (a new function object) replaces it.
    """
    known = _tasks.get(task.module_path)
    if known is None or known.func is not task.func:
        _tasks[task.module_path] = task


def registered(path: str) -> Task | None:
    """The Task registered under ``path`` in this process, without discovering or importing."""
    return _tasks.get(path)


def discover(modules: list[str] | None = None) -> None:
    """Import the installed apps' ``tasks`` modules and ``modules`` (default: the configured ones).

    Their ``@task`` definitions register themselves. An import error propagates: it
    is a broken module of the project (the system check reports it as E022).
    """
    global _discovered
    with _discovery:
        autodiscover_modules("tasks")
        for module in configured_modules() if modules is None else modules:
            import_module(module)
        if modules is None:
            _discovered = True
    logger.debug("Discovered Django Tasks: %s registered", len(_tasks))


def find(path: str) -> Task:
    """The registered Task at ``path``, discovering the configured modules once if needed."""
    task = _tasks.get(path)
    if task is None and not _discovered:
        discover()
        task = _tasks.get(path)
    if task is None:
        raise UnregisteredTask(
            f"{path!r} is not a registered Django Task: a worker runs only tasks defined with "
            "@task for django_dbq's DatabaseBackend in the tasks module of an installed app "
            "or in a module listed in the backend's OPTIONS['task_modules']. Nothing was "
            "imported for it."
        )
    return task
