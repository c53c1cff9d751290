"""The worker's side of Django Tasks: the Task check, running a task, Django's task signals.

A task is an ordinary :class:`~django_dbq.models.Job` whose name names the task
(:mod:`.results`) and whose only step is that module path. The worker claims, leases,
rescues and retries it like any job; only the step itself runs through
:func:`run_task` instead of being called with the job.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Coroutine
from inspect import iscoroutinefunction
from typing import TYPE_CHECKING, Any

from django.conf import settings
from django.dispatch import receiver

from .. import signals as dbq_signals
from ..definitions import DJANGO_TASK_PREFIX, JobDefinition
from ..timeouts import run_coroutine, within
from . import registry
from .compat import (
    Task,
    TaskContext,
    normalize_json,
    task_backends,
    task_finished,
    task_started,
)
from .config import ConfiguredBackend
from .registry import UnregisteredTask
from .results import result_from_job, split_name

if TYPE_CHECKING:
    from ..models import Job

logger = logging.getLogger("django_dbq.tasks")

# -- JSON ---------------------------------------------------------------------


def json_value(value: Any) -> Any:
    """``value`` as the JSON it will be stored as; raises ``TypeError``/``ValueError`` otherwise.

    Tuples become lists and bytes become text (as Django's own backends do); anything
    that would come back different (non-string keys, NaN) is refused.
    """
    normalized = normalize_json(value)
    text = json.dumps(normalized, allow_nan=False)
    if json.loads(text) != normalized:
        raise ValueError("it would not read back the same (are all dict keys strings?)")
    return normalized


# -- backends ------------------------------------------------------------------------


def database_backend(alias: str) -> ConfiguredBackend:
    if alias not in (getattr(settings, "TASKS", None) or {}):
        raise UnregisteredTask(f"No backend {alias!r} in the TASKS setting.")
    backend = task_backends[alias]
    if not isinstance(backend, ConfiguredBackend):
        raise UnregisteredTask(
            f"TASKS[{alias!r}] is {type(backend).__name__}, not django_dbq's DatabaseBackend."
        )
    return backend


# -- running ------------------------------------------------------------------------


def task_definition(name: str) -> JobDefinition:
    """The one-step definition of a task job (``get_definition`` calls this for task jobs).

    The task must be registered (see :mod:`.registry`): a row naming anything else
    fails with :class:`~.registry.UnregisteredTask` and nothing is imported for it.
    """
    alias, path = split_name(name)
    backend = database_backend(alias)
    task = registry.find(path)
    policy = backend.policy_for(task)
    runner = TaskRunner()
    if iscoroutinefunction(task.func) and policy["timeout"]:
        # The worker's alarm would interrupt only the wait, leaving the coroutine running
        # in its event loop thread: time it out inside the loop instead, which cancels it.
        runner = TaskRunner(async_timeout=policy["timeout"])
        policy["timeout"] = None
    return JobDefinition(name=name, tasks=(path,), runner=runner, **policy)


class TaskRunner:
    """A task job's step: ``runner(job, step)`` calls the task (an async one via ``async_to_sync``).

    The async worker (``--mode async``) asks :meth:`coroutine` first, and awaits an
    async task on its own event loop.
    """

    def __init__(self, async_timeout: float | None = None) -> None:
        self.async_timeout = async_timeout

    def __call__(self, job: Job, step: str) -> None:
        run_task(job, step, self.async_timeout)

    def coroutine(self, job: Job, step: str) -> Coroutine[Any, Any, None] | None:
        """The step as a coroutine when the task is ``async def`` (None otherwise)."""
        task = registry.find(step)
        if not iscoroutinefunction(task.func):
            return None
        args, kwargs = task_arguments(task, job)
        return self._run(task.func(*args, **kwargs), job, step)

    async def _run(self, coroutine: Coroutine, job: Job, step: str) -> None:
        keep_return_value(job, step, await within(coroutine, self.async_timeout, step))


def run_task(job: Job, step: str, async_timeout: float | None = None) -> None:
    """Call the task with the stored arguments; keep its return value in the workspace."""
    task = registry.find(step)
    args, kwargs = task_arguments(task, job)
    if iscoroutinefunction(task.func):
        value = run_coroutine(task.func, args, kwargs, step, async_timeout)
    else:
        value = task.call(*args, **kwargs)
    keep_return_value(job, step, value)


def task_arguments(task: Task, job: Job) -> tuple[list, dict]:
    """The stored arguments, behind a ``TaskContext`` for a task that takes one."""
    workspace = job.workspace
    args, kwargs = list(workspace.get("args") or []), dict(workspace.get("kwargs") or {})
    if task.takes_context:
        args.insert(0, TaskContext(task_result=result_from_job(job, running=True)))
    return args, kwargs


def keep_return_value(job: Job, step: str, value: Any) -> None:
    try:
        job.workspace["return_value"] = json_value(value)
    except (TypeError, ValueError) as error:
        # A TypeError, as Django's ImmediateBackend records it: code checks for that class.
        raise TypeError(
            f"{step} returned a {type(value).__name__}, which is not JSON: {error}"
        ) from None


# -- Django's task signals, sent from the job signals ----------------------------------
# (Connected without ``sender=Job`` so that importing this module never loads models:
# ``@task`` may run while the app registry is still loading.)


def _send(signal, job: Job) -> None:
    if not job.name.startswith(DJANGO_TASK_PREFIX):
        return
    try:
        result = result_from_job(job)
        sender = type(task_backends[result.backend])
    except Exception as error:  # a row that names no Task: it was failed, nothing to report
        logger.warning("No task signal for job %s: %s", job.pk, error)
        return
    # A receiver that raises must not take the worker down with it.
    for handler, response in signal.send_robust(sender, task_result=result):
        if isinstance(response, Exception):
            logger.error(
                "Task signal receiver %r raised %s: %s", handler, type(response).__name__, response
            )


@receiver(dbq_signals.job_started, dispatch_uid="django_dbq.tasks.started")
def _job_started(sender: Any, job: Job, **kwargs: Any) -> None:
    _send(task_started, job)


@receiver(dbq_signals.job_completed, dispatch_uid="django_dbq.tasks.completed")
@receiver(dbq_signals.job_failed, dispatch_uid="django_dbq.tasks.failed")
def _job_finished(sender: Any, job: Job, **kwargs: Any) -> None:
    _send(task_finished, job)
