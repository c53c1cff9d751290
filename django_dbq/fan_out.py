"""Dynamic fan-out: jobs a running step adds to its own workflow.

::

    def split(job):
        for path in list_files(job.workspace["folder"]):
            job.workflow.add("import_file", workspace={"path": path})

While a step of a workflow's job runs, the jobs it adds to that workflow are written
by the worker in the transaction of the step's checkpoint, and the running job's
dependents wait for them too: jobs added through ``job.workflow`` (with or without a
call to ``enqueue()``), and jobs added to any other instance of that workflow and then
``enqueue()``-d (``enqueue()`` then writes nothing and returns the jobs added since its
last call). A step that fails, or whose worker dies before the checkpoint, adds nothing:
its next run adds its jobs afresh, so a retried step never adds them twice. Problems
with the added jobs (a bad job, a duplicate unique key, a cycle through the running
job's dependents) are raised by the checkpoint's write and fail the step.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import AbstractContextManager, contextmanager
from contextvars import ContextVar
from typing import Any

_running: ContextVar[StepAdditions | None] = ContextVar("django_dbq_step_additions", default=None)


class StepAdditions:
    """The workflows a running step added jobs to (its job's own workflow only)."""

    def __init__(self, job: Any) -> None:
        self.job = job
        self.workflows: list[Any] = []

    def take(self, workflow: Any) -> bool:
        """Keep ``workflow``'s added jobs for the checkpoint, if it is the job's own."""
        if self.job.workflow_id is None or workflow.pk != self.job.workflow_id:
            return False
        if not any(kept is workflow for kept in self.workflows):
            self.workflows.append(workflow)
        return True

    def _take_cached(self) -> None:
        # ``job.workflow`` as the step loaded it: added to without a call to enqueue().
        field = type(self.job)._meta.get_field("workflow")
        cached = field.get_cached_value(self.job, default=None)
        if cached is not None:
            self.take(cached)

    def writer(self) -> Callable[[], list] | None:
        """What writes the added jobs inside the checkpoint's transaction; None if none."""
        self._take_cached()
        added = [(workflow, list(workflow._pending)) for workflow in self.workflows]
        added = [(workflow, pending) for workflow, pending in added if pending]
        if not added:
            return None
        using = self.job._state.db or "default"

        def write() -> list:
            notices: list = []
            for workflow, pending in added:
                notices.extend(workflow.write_jobs(pending, using, after_job=self.job))
            return notices

        return write

    def discard(self) -> None:
        """Forget what was added (written with the checkpoint, or dropped with the step)."""
        self._take_cached()
        for workflow in self.workflows:
            workflow._pending.clear()
            workflow.__dict__.pop("_handed", None)


def collecting(job: Any) -> AbstractContextManager:
    """While ``job``'s step runs: jobs added to its workflow wait for its checkpoint.

    A job outside any workflow has nothing to collect: a shared no-op (a step then
    costs nothing here).
    """
    return _collecting(job) if job.workflow_id is not None else NOTHING_ADDED


@contextmanager
def _collecting(job: Any) -> Iterator[StepAdditions]:
    additions = StepAdditions(job)
    token = _running.set(additions)
    try:
        yield additions
    finally:
        _running.reset(token)
        additions.discard()


class _NothingAdded:
    """``collecting()`` for a job outside any workflow: nothing to add, nothing to do."""

    def __enter__(self) -> _NothingAdded:
        return self

    def __exit__(self, *exc_info: Any) -> None:
        return None

    def writer(self) -> None:
        return None


NOTHING_ADDED = _NothingAdded()


def deferring(workflow: Any) -> bool:
    """Inside a step of one of ``workflow``'s jobs: its jobs are written with the checkpoint."""
    additions = _running.get()
    return additions is not None and additions.take(workflow)
