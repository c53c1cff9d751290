"""A task job's name, and its row read back as a Django ``TaskResult``.

A task job's name is ``DJANGO_TASK_PREFIX + "<backend alias>:<module path of the Task>"``.
The result is a :class:`DatabaseTaskResult`: Django's ``TaskResult`` and the job's
progress (``job.progress``), which a task that takes its context reports through
``context.task_result.set_progress(...)``.
"""

from __future__ import annotations

import dataclasses
from typing import TYPE_CHECKING, Any

from ..definitions import DJANGO_TASK_PREFIX
from ..states import State
from . import registry
from .compat import InvalidTask, Task, TaskError, TaskResult, TaskResultStatus
from .registry import UnregisteredTask

if TYPE_CHECKING:
    from ..models import Job

STATUSES = {
    State.NEW: TaskResultStatus.READY,
    State.READY: TaskResultStatus.READY,
    State.PROCESSING: TaskResultStatus.RUNNING,
    State.STOPPING: TaskResultStatus.RUNNING,
    State.COMPLETE: TaskResultStatus.SUCCESSFUL,
    State.FAILED: TaskResultStatus.FAILED,
    State.CANCELLED: TaskResultStatus.FAILED,
}
# Job states in which ``worker_id`` names the worker of the latest attempt.
HELD_OR_DONE = (State.PROCESSING, State.STOPPING, State.COMPLETE)


class WorkerLost(Exception):
    """Reported as the error of an attempt whose worker died (its lease ran out)."""


def job_name(alias: str, module_path: str) -> str:
    return f"{DJANGO_TASK_PREFIX}{alias}:{module_path}"


def split_name(name: str) -> tuple[str, str]:
    """``(backend alias, module path)`` of a task job's name."""
    alias, separator, path = name[len(DJANGO_TASK_PREFIX) :].rpartition(":")
    if not name.startswith(DJANGO_TASK_PREFIX) or not separator or not alias or not path:
        raise UnregisteredTask(f"{name!r} is not the name of a Django Task job.")
    return alias, path


@dataclasses.dataclass(frozen=True, slots=True, kw_only=True)
class DatabaseTaskResult(TaskResult):
    """Django's ``TaskResult``, with the job's ``progress`` (``None``, or
    ``{"done": ..., "total": ..., "message": ...}``: see :mod:`django_dbq.progress`)."""

    progress: dict[str, Any] | None = None
    _job: Any = dataclasses.field(default=None, init=False, repr=False, compare=False)

    def set_progress(self, done: float, total: float | None = None, message: str = "") -> None:
        """Report the running task's progress (``Job.set_progress``): from the task itself,
        through ``context.task_result``. ``RuntimeError`` from anywhere else."""
        self._running_job().set_progress(done, total, message)
        object.__setattr__(self, "progress", self._job.progress)

    async def aset_progress(
        self, done: float, total: float | None = None, message: str = ""
    ) -> None:
        """:meth:`set_progress` from an ``async def`` task."""
        await self._running_job().aset_progress(done, total, message)
        object.__setattr__(self, "progress", self._job.progress)

    def _running_job(self) -> Job:
        if self._job is None or self._job.claim_token is None:
            raise RuntimeError(
                "Only the running task reports its progress, through its context's task_result."
            )
        return self._job

    def refresh(self) -> None:
        self._copy(self.task.get_backend().get_result(self.id))

    async def arefresh(self) -> None:
        self._copy(await self.task.get_backend().aget_result(self.id))

    def _copy(self, fresh: TaskResult) -> None:
        for field in dataclasses.fields(fresh):
            if field.name != "_job":
                object.__setattr__(self, field.name, getattr(fresh, field.name))


def _class_path(record: dict) -> str:
    if record.get("class"):
        return record["class"]
    kind = record.get("type") or "Exception"
    if kind == "WorkerLost":
        return f"{WorkerLost.__module__}.WorkerLost"
    import builtins

    return f"builtins.{kind}" if isinstance(getattr(builtins, kind, None), type) else kind


def _worker_ids(job: Job) -> list[str]:
    """One worker id per attempt (so ``TaskResult.attempts`` is the job's attempt count)."""
    # RetryLater hands its attempt back, so its record is not an attempt.
    known = [r.get("worker") or "" for r in job.errors or [] if r.get("type") != "RetryLater"]
    if job.state in HELD_OR_DONE and job.worker_id:
        known.append(job.worker_id)
    attempts = job.attempts
    if len(known) >= attempts:
        return known[len(known) - attempts :]
    return ["unknown"] * (attempts - len(known)) + known  # older history was trimmed


def result_from_job(
    job: Job, task: Task | None = None, *, running: bool = False
) -> DatabaseTaskResult:
    """The ``TaskResult`` a task job's row stands for. ``running``: ``job`` is the worker's
    instance running the task, which the result reports progress through (its context's)."""
    alias, path = split_name(job.name)
    if task is None:
        task = registry.find(path)
        try:
            task = task.using(
                priority=job.priority,
                queue_name=job.queue_name,
                run_after=job.run_after,
                backend=alias,
            )
        except InvalidTask:
            pass  # the settings changed since it was enqueued; describe it as defined now
    workspace = job.workspace or {}
    status = STATUSES[job.state]
    result = DatabaseTaskResult(
        task=task,
        id=str(job.pk),
        status=status,
        enqueued_at=job.created,
        started_at=job.started_at,
        finished_at=job.finished_at,
        last_attempted_at=job.started_at,
        args=list(workspace.get("args") or []),
        kwargs=dict(workspace.get("kwargs") or {}),
        backend=alias,
        errors=[
            TaskError(
                exception_class_path=_class_path(record),
                traceback=record.get("traceback") or record.get("message") or "",
            )
            for record in job.errors or []
        ],
        worker_ids=_worker_ids(job),
        progress=job.progress,
    )
    if status == TaskResultStatus.SUCCESSFUL:
        object.__setattr__(result, "_return_value", workspace.get("return_value"))
    if running:
        object.__setattr__(result, "_job", job)
    return result
