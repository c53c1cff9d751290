"""The changes people make (the API, the commands, the admin): cancel and retry.

Each is one conditional statement, so no worker's write can slip between the check
of the state and the change.
"""

from __future__ import annotations

from typing import Any

from django.db import router, transaction
from django.db.models import Case, F, Q, Value, When
from django.utils import timezone

from .. import signals
from ..definitions import get_definition
from ..states import RETRYABLE, RUNNABLE, UNFINISHED, State
from . import dependencies
from .rows import duplicate_job_raised, jobs_of


def cancel(job: Any) -> bool:
    """Cancel ``job``: a waiting job at once, a running one at the end of its step.

    Returns False (changing nothing) when the job had finished already.
    """
    now = timezone.now()
    waiting = Q(state__in=(State.WAITING, *RUNNABLE))
    using = job._state.db or router.db_for_write(type(job))
    notices = []
    with transaction.atomic(using=using):
        # One statement, so no interleaving with a worker's claim or release can slip
        # between "is it waiting?" and "is it running?". MySQL evaluates assignments
        # left to right with the new values: ``state`` comes last.
        updated = (
            jobs_of(job, using)
            .filter(pk=job.pk, state__in=UNFINISHED)
            .update(
                cancel_requested=Case(When(waiting, then=Value(False)), default=Value(True)),
                finished_at=Case(When(waiting, then=Value(now)), default=F("finished_at")),
                modified=now,
                state=Case(When(waiting, then=Value(State.CANCELLED)), default=F("state")),
            )
        )
        job.refresh_from_db()
        # Cancelled here (not by its worker since): the row carries this call's timestamp.
        cancelled_here = updated and job.state == State.CANCELLED and job.finished_at == now
        if cancelled_here and dependencies.affects_others(job):
            notices = dependencies.job_ended(job, State.CANCELLED.value, using)
    if cancelled_here:
        signals.send(signals.job_cancelled, job)
        dependencies.send(notices)
    return bool(updated)


def retry(job: Any, from_step: str | None = None) -> None:
    """Make a ``FAILED``/``CANCELLED`` job ``READY`` again, at its failed step or ``from_step``.

    Raises ``ValueError`` (changing nothing) for a step the job does not have or a job
    in another state, :class:`DuplicateJob` when its unique key is held by another job.
    """
    job.refresh_from_db(fields=["state", "next_task"])
    definition = get_definition(job.name)
    step = from_step or job.next_task or definition.tasks[0]
    if step not in definition.tasks:
        raise ValueError(
            f"{step!r} is not a step of {job.name!r}; steps are {list(definition.tasks)}."
        )
    using = router.db_for_write(type(job))
    state, waiting_for = dependencies.retry_state(job, using)
    # READY, the job holds its unique key again: another job may have taken it.
    with duplicate_job_raised(job, using):
        updated = (
            jobs_of(job)
            .filter(pk=job.pk, state__in=RETRYABLE)
            .update(
                state=state,
                waiting_for=waiting_for,
                next_task=step,
                attempts=0,
                snoozes=0,
                max_attempts=definition.max_attempts,
                run_after=None,
                cancel_requested=False,
                finished_at=None,
                modified=timezone.now(),
            )
        )
    if not updated:
        raise ValueError(f"Only FAILED or CANCELLED jobs can be retried; {job} is not.")
    job.refresh_from_db()
    if dependencies.affects_others(job):
        dependencies.unblock(job, job._state.db or router.db_for_write(type(job)))
    signals.send(signals.job_retried, job, delay=0.0, manual=True)
