"""Signals for monitoring. Every signal is sent with ``sender=Job`` and ``job=<Job>``.

Receivers run in the process that made the change (the web process for
``job_created``, the worker for most others), after the change is written. A
receiver that raises is logged (logger ``django_dbq.signals``) and changes
nothing: the change it was told of stands, and the other receivers still run.

- ``job_created(job)``: after a job is inserted (``save``/``create``/``bulk_create``).
- ``job_started(job)``: a worker claimed the job and is about to run its next step
  (sent once per run: again after a retry, a release or a rescue).
- ``step_finished(job, task)``: a step returned and was saved; ``task`` is its dotted path.
- ``job_completed(job)``: the last step finished; the job is ``COMPLETE``.
- ``job_failed(job, exception)``: the job failed for good (no attempt left, ``FailPermanently``,
  or lost too often); ``exception`` is the error, None when the worker was lost.
- ``job_retried(job, delay, manual)``: the job will run again: ``delay`` is the seconds until then
  (a float; 0 for a retry by hand), ``manual`` is True for ``Job.retry()``/``retry_job``.
- ``job_rescued(job)``: a lapsed lease was taken back from a lost worker.
- ``job_cancelled(job)``: the job is ``CANCELLED`` (at once for a waiting job; at the end of
  its current step for a running one), or cancelled because a job it depends on failed.
- ``workflow_completed(workflow)`` / ``workflow_failed(workflow)`` (sender: ``Workflow``):
  every job of the workflow finished, all ``COMPLETE`` / at least one not.
"""

from __future__ import annotations

import logging
from collections.abc import Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from typing import Any

from django.dispatch import Signal

logger = logging.getLogger(__name__)

job_created = Signal()
job_started = Signal()
step_finished = Signal()
job_completed = Signal()
job_failed = Signal()
job_retried = Signal()
job_rescued = Signal()
job_cancelled = Signal()
# Sent with ``workflow=`` (sender: the Workflow model) once every job of a workflow has
# finished: all COMPLETE, or at least one FAILED or CANCELLED.
workflow_completed = Signal()
workflow_failed = Signal()


# Signals sent while a caller holds them (``held()``): kept, to be sent once the
# transaction that made the changes they tell of has committed, or dropped with it.
_held: ContextVar[list | None] = ContextVar("django_dbq_held_signals", default=None)


@contextmanager
def held() -> Iterator[list]:
    """Keep the signals sent inside instead of sending them; :func:`release` sends them."""
    kept: list = []
    token = _held.set(kept)
    try:
        yield kept
    finally:
        _held.reset(token)


def release(kept: list) -> None:
    """Send the signals :func:`held` kept, in the order they were sent."""
    for signal, job, argument, kwargs in kept:
        send(signal, job, argument=argument, **kwargs)


def send(signal: Signal, job: Any, *, argument: str = "job", **kwargs: Any) -> None:
    """Tell ``signal``'s receivers of a change made to ``job`` (or a workflow, passed as
    ``argument``); a receiver that raises is logged."""
    if not signal.receivers:
        return
    kept = _held.get()
    if kept is not None:
        kept.append((signal, job, argument, kwargs))
        return
    sender = job._meta.concrete_model
    for receiver, outcome in signal.send_robust(sender=sender, **{argument: job}, **kwargs):
        if isinstance(outcome, Exception):
            logger.error(
                "Signal receiver %r raised %s: %s",
                receiver,
                type(outcome).__name__,
                outcome,
                exc_info=outcome,
            )
