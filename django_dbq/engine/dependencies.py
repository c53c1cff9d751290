"""What a job's end means for the jobs waiting for it, and for its workflow.

The engine calls :func:`job_ended` inside the transaction of the write that ended a
job that has dependents or belongs to a workflow (``rows.fenced_update``, a cancel,
a rescue that gives up), so that a dependent is never left waiting for a job that
has ended, whatever happens to the process after the commit:

- each edge from the ended job is counted off once (``Dependency.satisfied``): a
  ``COMPLETE`` job satisfies every edge, a ``FAILED``/``CANCELLED`` one only those
  with ``on_failure="run"``; a dependent with nothing left to wait for becomes ``NEW``;
- the other dependents of a job that ended badly are cancelled (``Dependency.blocked``),
  and so on down the graph;
- a workflow whose jobs have all finished gets ``finished_at`` (under a lock on its
  row, so that of two jobs ending at once on two workers the later one sees both).

Signals are sent after the transaction by :func:`send`.
"""

from __future__ import annotations

from typing import Any

from django.db import transaction
from django.db.models import Case, F, Q, Value, When
from django.utils import timezone

from .. import signals
from ..states import ACTIVE, FINISHED, RUNNABLE, UNFINISHED, State

Notice = tuple  # (signal, the job or workflow, the keyword it is sent as)
ENDED = {state.value for state in FINISHED}


def _models(job_model: Any) -> tuple[Any, Any]:
    """The Dependency and Workflow models, through the job model's relations (the engine
    does not import :mod:`django_dbq.workflows`, whose API calls the engine)."""
    meta = job_model._meta
    return meta.get_field("dependencies").related_model, meta.get_field("workflow").related_model


def affects_others(job: Any) -> bool:
    """Whether ``job``'s end must be followed through (dependents, a workflow)."""
    return bool(getattr(job, "dependents", None)) or getattr(job, "workflow_id", None) is not None


def job_ended(job: Any, state: str, using: str) -> list[Notice]:
    """Follow ``job``'s end as ``state`` through, inside the ending write's transaction."""
    jobs = type(job)._default_manager.using(using)
    now = timezone.now()
    notices: list[Notice] = []
    workflows = {job.workflow_id} if job.workflow_id else set()
    # Workflows with a dependent that goes on: not finished, no need to look (a fan-in's
    # parts would otherwise all queue up on the workflow's row).
    going_on: set[Any] = set()
    frontier = [(job.pk, state)] if job.dependents else []
    while frontier:
        parent, ended = frontier.pop()
        victims, continuing = _settle(jobs, parent, ended, using, now)
        going_on |= continuing
        for victim in victims:
            notices.append((signals.job_cancelled, victim, "job"))
            if victim.dependents:
                frontier.append((victim.pk, State.CANCELLED.value))
            if victim.workflow_id:
                workflows.add(victim.workflow_id)
    for workflow_id in workflows - going_on:
        notices.extend(_close_workflow(jobs, workflow_id, using, now))
    return notices


def _settle(jobs, parent: Any, ended: str, using: str, now) -> tuple[list[Any], set[Any]]:
    """Count ``parent``'s edges off; cancel the dependents it blocks. The cancelled jobs,
    and the workflows of the dependents counted off (they wait or run: unfinished)."""
    edges = _models(jobs.model)[0].objects.using(using).filter(depends_on=parent)
    counted = edges.filter(satisfied=False, blocked=False)
    if ended != State.COMPLETE:
        counted = counted.filter(on_failure="run")
    rows = list(counted.values_list("job_id", "job__workflow_id", "job__state"))
    children = [child for child, _, _ in rows]
    if children:
        counted.filter(job_id__in=children).update(satisfied=True)
        waiting = jobs.filter(pk__in=children, state=State.WAITING, waiting_for__gt=0)
        # One statement; ``state`` first: MySQL reads the columns assigned before it as
        # already changed, so it must see ``waiting_for`` as it was.
        last_one = When(waiting_for__lte=1, then=Value(State.NEW.value))
        waiting.update(
            state=Case(last_one, default=F("state")),
            waiting_for=F("waiting_for") - 1,
            modified=now,
        )
    # Only a dependent still waiting goes on (one cancelled by hand has finished).
    going_on = {workflow for _, workflow, state in rows if workflow and state == State.WAITING}
    if ended == State.COMPLETE:
        return [], going_on
    blocking = edges.filter(on_failure="cancel", satisfied=False, blocked=False)
    victims = list(jobs.filter(pk__in=blocking.values("job_id"), state=State.WAITING))
    # Every such edge blocks, also of a dependent cancelled already (by hand, or by another
    # dependency): a retry of that other one alone must not revive it.
    blocking.update(blocked=True)
    if not victims:
        return [], going_on
    reason = f"Cancelled: job {parent}, which it depends on, ended {ended}."
    ids = [victim.pk for victim in victims]
    values = {"state": State.CANCELLED.value, "finished_at": now, "modified": now, "error": reason}
    jobs.filter(pk__in=ids, state=State.WAITING).update(**values)
    for victim in victims:
        for name, value in values.items():
            setattr(victim, name, value)
    return victims, going_on


def close_workflow_of(job: Any, using: str) -> list[Notice]:
    """After ``job``'s end committed (the engine followed it through in one statement):
    mark its workflow finished if nothing of it is left, in a transaction of its own.

    Under the workflow row's lock, so of two last jobs the later sees both ends; a
    process lost between the two leaves ``finished_at`` unset (``delete_old_jobs`` looks
    at the jobs themselves) and the workflow signal unsent.
    """
    jobs = type(job)._default_manager.using(using)
    with transaction.atomic(using=using):
        return _close_workflow(jobs, job.workflow_id, using, timezone.now())


def _close_workflow(jobs, workflow_id: Any, using: str, now) -> list[Notice]:
    """Mark the workflow finished if none of its jobs is left unfinished."""
    Workflow = _models(jobs.model)[1]
    open_workflow = Workflow.objects.using(using).filter(pk=workflow_id, finished_at__isnull=True)
    workflow = open_workflow.select_for_update().first()
    if workflow is None:
        return []
    mine = jobs.filter(workflow_id=workflow_id)
    if mine.filter(state__in=UNFINISHED).exists():
        return []
    failed = mine.exclude(state=State.COMPLETE).exists()
    open_workflow.update(finished_at=now, failed=failed)
    workflow.finished_at, workflow.failed = now, failed
    signal = signals.workflow_failed if failed else signals.workflow_completed
    return [(signal, workflow, "workflow")]


def send(notices: list[Notice]) -> None:
    """Send the signals :func:`job_ended` gathered (after its transaction)."""
    for signal, subject, argument in notices:
        signals.send(signal, subject, argument=argument)


def unblock(job: Any, using: str) -> None:
    """``job`` was retried by hand: the dependents its end cancelled wait for it again,
    unless another of their dependencies still blocks them; and so on down the graph."""
    jobs = type(job)._default_manager.using(using)
    Dependency, _ = _models(type(job))
    edges = Dependency.objects.using(using)
    now = timezone.now()
    frontier = [job.pk]
    reopened = {job.workflow_id} - {None}
    with transaction.atomic(using=using):
        while frontier:
            parent = frontier.pop()
            mine = edges.filter(depends_on=parent, blocked=True)
            children = list(mine.values_list("job_id", flat=True))
            mine.update(blocked=False)
            for child in children:
                if edges.filter(job=child, blocked=True).exists():
                    continue  # another dependency that failed still holds it back
                waits = edges.filter(job=child, satisfied=False).count()
                revived = jobs.filter(pk=child, state=State.CANCELLED).update(
                    state=State.WAITING.value,
                    waiting_for=waits,
                    finished_at=None,
                    error="",
                    modified=now,
                )
                if revived:
                    frontier.append(child)
                    reopened.add(jobs.filter(pk=child).values_list("workflow", flat=True)[0])
        reopen(jobs.model, reopened - {None}, using)


def retry_state(job: Any, using: str) -> tuple[str, int | None]:
    """Where a job retried by hand goes: ``READY``, or ``WAITING`` for the dependencies it
    still waits for; ``ValueError`` while one that ended badly still blocks it."""
    edges = _models(type(job))[0].objects.using(using).filter(job=job.pk)
    blocking = list(edges.filter(blocked=True).values_list("depends_on_id", flat=True))
    if blocking:
        names = ", ".join(str(pk) for pk in blocking)
        raise ValueError(
            f"{job} waits for job(s) {names}, which ended FAILED or CANCELLED: retry those."
        )
    waits = edges.filter(satisfied=False).count()
    return (State.WAITING.value, waits) if waits else (State.READY.value, None)


def reopen(job_model: Any, workflow_ids: set, using: str) -> None:
    """Jobs of these workflows wait or run again: they are not finished."""
    if workflow_ids:
        Workflow = _models(job_model)[1]
        Workflow.objects.using(using).filter(pk__in=workflow_ids).update(
            finished_at=None, failed=False
        )


def cancel_workflow(workflow: Any) -> int:
    """Cancel the workflow's unfinished jobs: waiting ones at once, running ones after
    their step (through their workers). The number of jobs changed."""
    using = workflow._state.db or "default"
    jobs = workflow.jobs.using(using)
    now = timezone.now()
    values = {"state": State.CANCELLED.value, "finished_at": now, "modified": now}
    with transaction.atomic(using=using):
        waiting = jobs.filter(Q(state__in=RUNNABLE) | Q(state=State.WAITING))
        cancelled = list(waiting.select_for_update())
        count = jobs.filter(pk__in=[job.pk for job in cancelled], state__in=UNFINISHED).update(
            **values, error="Cancelled with its workflow."
        )
        count += jobs.filter(state__in=ACTIVE).update(cancel_requested=True, modified=now)
        notices = []
        for job in cancelled:
            for name, value in values.items():
                setattr(job, name, value)
            notices.append((signals.job_cancelled, job, "job"))
            notices.extend(job_ended(job, State.CANCELLED.value, using))
    send(notices)
    return count
