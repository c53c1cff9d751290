"""Workflows: jobs that wait for other jobs (fan-out, fan-in), built and enqueued at once
(the README's "Workflows" shows the API).

A job with dependencies is created ``WAITING``: no worker claims it. Each edge is a
:class:`Dependency` row. When a job ends, the engine (``engine.dependencies``), in the
same transaction as that end, counts the edge off its dependents (``waiting_for``) and
makes the ones with nothing left to wait for ``NEW``; a job that fails for good or is
cancelled cancels its dependents instead, unless their edge says ``on_failure="run"``.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterable
from typing import Any

from django.db import models, router, transaction
from django.db.models import Count
from django.utils import timezone

from . import fan_out, tracing
from .acyclic import CycleError, check_acyclic
from .engine.dependencies import cancel_workflow, job_ended, reopen, send
from .states import UNFINISHED, State

ON_FAILURE = ("cancel", "run")
__all__ = ["CycleError", "Dependency", "Workflow"]


class Workflow(models.Model):
    """A group of jobs enqueued together, some waiting for others."""

    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    name = models.CharField(max_length=200, blank=True)
    created = models.DateTimeField(default=timezone.now)
    # Set, with the outcome, once every job of the workflow has finished.
    finished_at = models.DateTimeField(null=True, blank=True)
    failed = models.BooleanField(default=False)

    class Meta:
        app_label = "django_dbq"
        ordering = ["-created"]

    def __str__(self) -> str:
        return f"{self.name or 'workflow'} {self.id}"

    @property
    def _pending(self) -> list[tuple[Any, list[Any], str]]:
        if "_pending_jobs" not in self.__dict__:
            self.__dict__["_pending_jobs"] = []
        return self.__dict__["_pending_jobs"]

    def add(self, name: str, *, after: Iterable[Any] = (), on_failure: str = "cancel", **fields):
        """A job of this workflow (not saved yet), run once every job in ``after`` completed.

        ``after`` holds jobs added before (or jobs already saved); ``on_failure="run"``
        runs it even if one of them fails or is cancelled. ``fields`` are the job's
        (``workspace``, ``queue_name``, ``priority``...). Saved by :meth:`enqueue`.
        """
        if on_failure not in ON_FAILURE:
            raise ValueError(f"on_failure must be one of {ON_FAILURE}, not {on_failure!r}.")
        job = job_model()(name=name, workflow=self, **fields)
        if job.trace_context is None:  # the trace it is added in, not the one it is written in
            job.trace_context = tracing.current_trace_context()
        parents = list({id(parent): parent for parent in after}.values())  # each once
        for parent in parents:
            if not isinstance(parent, job_model()):
                raise TypeError(f"after= takes jobs, not {type(parent).__name__}.")
        self._pending.append((job, parents, on_failure))
        return job

    def enqueue(self, using: str | None = None) -> list[Any]:
        """Save the workflow and every job added since, with their dependencies; the jobs.

        One transaction and a few bulk statements, whatever the number of jobs. A cycle
        raises :class:`CycleError` and a bad job ``ValueError``; nothing is written then.
        Inside a step of one of this workflow's jobs, the jobs are written with that
        step's checkpoint instead (:mod:`django_dbq.fan_out`).
        """
        pending = list(self._pending)
        check_acyclic(pending)
        if fan_out.deferring(self):  # the jobs added since the last call, not yet written
            handed = self.__dict__.get("_handed", 0)
            self.__dict__["_handed"] = len(pending)
            return [job for job, _, _ in pending[handed:]]
        using = using or router.db_for_write(job_model())
        with transaction.atomic(using=using):
            notices = self.write_jobs(pending, using)
        send(notices)
        self._pending.clear()
        return [job for job, _, _ in pending]

    def write_jobs(self, pending: list, using: str, after_job: Any = None) -> list:
        """Write ``pending`` (added jobs, their parents, ``on_failure``) in the caller's
        transaction; the signals owed. ``after_job`` (running, of this workflow): its
        dependents wait for every job written too."""
        check_acyclic(pending)
        Job = job_model()
        new = {id(job) for job, _, _ in pending}
        for job, parents, _ in pending:
            job.state = State.WAITING if parents else State.NEW
        counts: dict[int, int] = {}
        for _, parents, _ in pending:
            for parent in parents:
                counts[id(parent)] = counts.get(id(parent), 0) + 1
        later = waiting_dependents(after_job, using) if after_job is not None else {}
        if later:
            # They will wait for the added jobs: an added job must not wait for one of them.
            saved_parents = {p.pk for _, parents, _ in pending for p in parents if id(p) not in new}
            if saved_parents & downstream_of(set(later), using):
                raise CycleError(
                    "A job added by this step waits for a job that waits for this step's job."
                )
        for job, _, _ in pending:
            job.dependents = (counts.get(id(job), 0) + len(later)) or None
        if self._state.adding:
            self.save(using=using)
        else:  # more jobs in a saved workflow: it is not finished
            reopen(Job, {self.pk}, using)
        outside = [p for _, parents, _ in pending for p in parents if id(p) not in new]
        satisfied = link_existing(outside, using) if outside else {}
        for job, parents, on_failure in pending:
            job.waiting_for = adjusted_wait(job, parents, on_failure, satisfied)
        Job.objects.using(using).bulk_create([job for job, _, _ in pending])
        edges = [
            edge
            for job, parents, on_failure in pending
            for edge in new_edges(job, parents, on_failure, satisfied)
        ]
        for child, on_failure in later.items():
            edges.extend(
                Dependency(job_id=child, depends_on=job, on_failure=on_failure)
                for job, _, _ in pending
            )
        Dependency.objects.using(using).bulk_create(edges)
        if later:
            Job.objects.using(using).filter(pk__in=list(later)).update(
                waiting_for=models.F("waiting_for") + len(pending)
            )
        # A job born cancelled (a saved dependency had failed) passes that on.
        born_cancelled = [job for job, _, _ in pending if job.state == State.CANCELLED]
        cancelled = State.CANCELLED.value
        return [notice for job in born_cancelled for notice in job_ended(job, cancelled, using)]

    def status(self) -> dict[str, Any]:
        """The number of the workflow's jobs in each state, and whether it has finished."""
        rows = self.jobs.order_by().values("state").annotate(count=Count("pk"))
        counts = {state.value: 0 for state in State}
        counts.update({row["state"]: row["count"] for row in rows})
        self.refresh_from_db(fields=["finished_at", "failed"])
        done = self.finished_at is not None
        outcome = ("failed" if self.failed else "complete") if done else "running"
        return {"state": outcome, "counts": counts, "finished_at": self.finished_at}

    def cancel(self) -> int:
        """Cancel every unfinished job of the workflow (running ones after their step)."""
        return cancel_workflow(self)


class Dependency(models.Model):
    """One edge: ``job`` waits for ``depends_on``."""

    id = models.BigAutoField(primary_key=True)
    job = models.ForeignKey("django_dbq.Job", models.CASCADE, related_name="dependencies")
    depends_on = models.ForeignKey("django_dbq.Job", models.CASCADE, related_name="dependents_of")
    # "cancel": the job is cancelled if ``depends_on`` fails or is cancelled; "run": it runs.
    on_failure = models.CharField(max_length=10, default="cancel")
    # Counted off ``job``'s ``waiting_for`` (once, whatever happens to ``depends_on`` later).
    satisfied = models.BooleanField(default=False)
    # Set when ``depends_on`` ended badly and cancelled ``job``: a retry by hand of
    # ``depends_on`` puts ``job`` back to waiting.
    blocked = models.BooleanField(default=False)

    class Meta:
        app_label = "django_dbq"
        constraints = [
            models.UniqueConstraint(fields=["job", "depends_on"], name="dbq_dependency_unique")
        ]

    def __str__(self) -> str:
        return f"{self.job_id} after {self.depends_on_id}"


def create_dependent(manager: Any, fields: dict, parents: list[Any], on_failure: str) -> Any:
    """``Job.objects.create(depends_on=parents, ...)``: one job waiting for saved jobs.

    It joins the workflow of its first parent that has one, unless given its own.
    """
    if on_failure not in ON_FAILURE:
        raise ValueError(f"on_failure must be one of {ON_FAILURE}, not {on_failure!r}.")
    Job = manager.model
    if any(not isinstance(parent, Job) or parent._state.adding for parent in parents):
        raise TypeError("depends_on takes saved jobs.")
    using = manager.db
    with transaction.atomic(using=using):
        states = link_existing(parents, using) if parents else {}
        job = Job(**fields)
        if job.workflow_id is None and parents:
            saved = Job.objects.using(using).filter(pk__in=[parent.pk for parent in parents])
            flows = saved.exclude(workflow=None).values_list("workflow", flat=True)
            job.workflow_id = next(iter(flows), None)
        job.state = State.WAITING
        job.waiting_for = adjusted_wait(job, parents, on_failure, states)
        job.save(using=using)
        Dependency.objects.using(using).bulk_create(new_edges(job, parents, on_failure, states))
        reopen(Job, {job.workflow_id} - {None}, using)
        born_cancelled = job.state == State.CANCELLED
        notices = job_ended(job, State.CANCELLED.value, using) if born_cancelled else []
    send(notices)
    return job


def new_edges(job: Any, parents: list[Any], on_failure: str, states: dict) -> list[Dependency]:
    """The edges from ``job`` to ``parents``, marked as their states at creation make them:
    counted off already for a parent that has ended the way the edge lets ``job`` go on,
    blocking for one that ended the way that cancelled ``job`` (a retry of it unblocks)."""
    edges = []
    for parent in parents:
        state = states.get(parent.pk)
        ended_badly = state is not None and state not in UNFINISHED and state != State.COMPLETE
        edge = Dependency(job=job, depends_on=parent, on_failure=on_failure)
        edge.satisfied = state == State.COMPLETE or (ended_badly and on_failure == "run")
        edge.blocked = ended_badly and on_failure == "cancel"
        edges.append(edge)
    return edges


def dependency_workspaces(job: Any) -> dict[str, Any]:
    """``job.dependency_workspaces()``: what the jobs it depends on left in their workspaces."""
    parents = job_model()._default_manager.using(job._state.db).filter(dependents_of__job=job)
    return {str(pk): workspace for pk, workspace in parents.values_list("pk", "workspace")}


def job_model() -> type[models.Model]:
    """The Job model, without importing models (which imports this module)."""
    return Dependency._meta.get_field("job").related_model


def link_existing(parents: list[Any], using: str) -> dict[Any, str]:
    """Lock saved ``parents``, count one more dependent on each; their states by pk.

    Locked so that a parent ending meanwhile either sees the new edge (it waits for this
    transaction) or has ended before it (its state says so here).
    """
    Job = job_model()
    pks = {parent.pk for parent in parents}
    rows = Job.objects.using(using).select_for_update().filter(pk__in=pks)
    states = dict(rows.values_list("pk", "state"))
    missing = pks - set(states)
    if missing:
        raise ValueError(f"after= names jobs that do not exist: {sorted(map(str, missing))}.")
    for pk in pks:
        added = sum(1 for parent in parents if parent.pk == pk)
        Job.objects.using(using).filter(pk=pk).update(
            dependents=models.functions.Coalesce("dependents", 0) + added
        )
    return states


def downstream_of(roots: set, using: str) -> set:
    """``roots`` and every job that waits for one of them, directly or not."""
    seen, frontier = set(roots), list(roots)
    while frontier:
        batch, frontier = frontier[:1000], frontier[1000:]
        edges = Dependency.objects.using(using).filter(depends_on__in=batch)
        found = [pk for pk in edges.values_list("job_id", flat=True) if pk not in seen]
        seen.update(found)
        frontier.extend(found)
    return seen


def waiting_dependents(job: Any, using: str) -> dict[Any, str]:
    """The jobs still waiting for ``job`` (locked), with their edge's ``on_failure``."""
    edges = Dependency.objects.using(using).filter(
        depends_on=job.pk, satisfied=False, blocked=False
    )
    children = dict(edges.values_list("job_id", "on_failure"))
    waiting = job_model().objects.using(using).select_for_update()
    held = waiting.filter(pk__in=list(children), state=State.WAITING).values_list("pk", flat=True)
    return {pk: children[pk] for pk in held}


def adjusted_wait(job: Any, parents: list[Any], on_failure: str, states: dict) -> int | None:
    """How many of ``parents`` ``job`` still waits for; ``job`` made ``NEW`` or ``CANCELLED``
    when saved parents have already ended."""
    waiting = 0
    for parent in parents:
        state = states.get(parent.pk)
        if state is None or state in UNFINISHED:
            waiting += 1
        elif state != State.COMPLETE and on_failure == "cancel":
            job.state, job.finished_at = State.CANCELLED, timezone.now()
            job.error = f"Cancelled: job {parent.pk}, which it depends on, ended {state}."
    if job.state == State.WAITING and not waiting:
        job.state = State.NEW
    return waiting or None
