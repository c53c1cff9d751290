"""Job progress: how far a running task has got, reported from inside it.

::

    def import_rows(job):
        rows = load(job.workspace["path"])
        for number, row in enumerate(rows, 1):
            store(row)
            job.set_progress(number, len(rows), message=row.name)

``job.progress`` is ``{"done": ..., "total": ..., "message": ...}`` (or None). A report is
one fenced write of that column, at most one per ``DBQ_PROGRESS_INTERVAL`` seconds per
job: the reports in between are kept in memory, and the step's checkpoint writes the last
of them, so a tight loop cannot flood the database, and a step that completes leaves its
final figure (a step that fails or is cancelled leaves the last one written).
The row keeps the last progress written through a rescue, a retry and the job's end.
"""

from __future__ import annotations

import math
import time
from typing import Any

from django.db import DatabaseError, connections

from . import conf, engine
from .exceptions import JobLost

MESSAGE_MAX_LENGTH = 200


def progress_value(done: Any, total: Any = None, message: Any = "") -> dict[str, Any]:
    """The value stored for a report; ``ValueError``/``TypeError`` for a bad one."""
    for name, value in (("done", done), ("total", total)):
        if value is None and name == "total":
            continue
        if isinstance(value, bool) or not isinstance(value, int | float):
            raise TypeError(f"Progress {name} must be a number, not {value!r}.")
        if not math.isfinite(value) or value < 0:
            raise ValueError(f"Progress {name} must be a finite number of at least 0, not {value}.")
    if total is not None and done > total:
        raise ValueError(f"Progress done ({done}) cannot exceed total ({total}).")
    if not isinstance(message, str):
        raise TypeError(f"Progress message must be a str, not {type(message).__name__}.")
    return {"done": done, "total": total, "message": message[:MESSAGE_MAX_LENGTH]}


def percent(progress: dict[str, Any] | None) -> float | None:
    """``progress`` as a percentage, when it has a total above 0."""
    if not progress or not progress.get("total"):
        return None
    return 100.0 * progress["done"] / progress["total"]


class Reporter:
    """One held job's progress reports: written now, or kept for the checkpoint."""

    __slots__ = ("job", "written_at", "pending")

    def __init__(self, job: Any) -> None:
        self.job = job
        self.written_at: float | None = None
        self.pending = False

    def report(self, value: dict[str, Any]) -> None:
        job = self.job
        if job.claim_token is None:
            raise RuntimeError(
                "Only the task running a job reports its progress (this instance holds no claim)."
            )
        job.progress = value
        now = time.monotonic()
        interval = conf.get("DBQ_PROGRESS_INTERVAL")
        if self.written_at is not None and now - self.written_at < interval:
            self.pending = True  # the checkpoint, or a later report, writes it
            return
        if not engine.fenced_update(job, progress=value):
            raise JobLost()
        self.written_at, self.pending = now, False


def report_from_thread(job: Any, done: Any, total: Any, message: Any) -> None:
    """``aset_progress``'s report, in asgiref's shared thread: a connection that failed
    there is closed, so that the next report opens a fresh one (no worker checks it)."""
    try:
        job.set_progress(done, total, message)
    except DatabaseError:
        connections[job._state.db or "default"].close()
        raise


def reporter_of(job: Any) -> Reporter:
    if job.progress_reporter is None:
        job.progress_reporter = Reporter(job)
    return job.progress_reporter


def unsaved(job: Any) -> dict[str, Any]:
    """What a checkpoint must also write: a report that waited for it."""
    reporter = job.progress_reporter
    if reporter is None or not reporter.pending:
        return {}
    reporter.pending = False
    return {"progress": job.progress}
