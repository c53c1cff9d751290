"""The Job model and its query vocabulary.

Every change of a job's state is the engine's (``django_dbq.engine``): the methods
here that change one (``cancel``, ``retry``, a worker's ``save``) call into it.
"""

from __future__ import annotations

import datetime
import logging
import uuid
from collections.abc import Callable, Collection
from typing import Any

from asgiref.sync import sync_to_async
from django.db import models, router
from django.db.models import Count, Q
from django.utils import timezone

from . import bulk, engine, enqueue, progress, retention, signals, states, workflows
from .definitions import get_definition
from .keys import ConcurrencyKey  # noqa: F401 - the key rows' model, registered with the app's
from .queues import Queue  # noqa: F401 - the pause state's model, registered with the app's
from .retention import DEFAULT_DELETE_JOBS_AFTER_HOURS  # noqa: F401 - django-db-queue 3.x's name
from .schedule_ticks import Schedule  # noqa: F401 - recurring jobs' ticks, registered likewise

logger = logging.getLogger(__name__)


class JobQuerySet(models.QuerySet):
    RUNNABLE = states.RUNNABLE
    ACTIVE = states.ACTIVE
    FINISHED = states.FINISHED
    HOLDING_KEY = states.HOLDING_KEY

    def runnable(self, now: datetime.datetime | None = None) -> JobQuerySet:
        """Jobs waiting to run whose ``run_after`` has come (compared with ``now`` from Python)."""
        now = now or timezone.now()
        return self.filter(state__in=self.RUNNABLE).filter(
            Q(run_after__isnull=True) | Q(run_after__lte=now)
        )

    def to_process(self, queue_name: str = "default") -> JobQuerySet:
        """Runnable jobs of ``queue_name`` in claim order (priority first, then oldest)."""
        return self.runnable().filter(queue_name=queue_name).order_by("-priority", "created")

    def get_ready_or_none(self, queue_name: str = "default", max_retries: int = 3) -> Job | None:
        """The job a worker of ``queue_name`` would run next, without claiming it.

        django-db-queue 3.x's name and signature; ``max_retries`` is accepted and unused.
        """
        return self.to_process(queue_name).first()

    def delete_old(
        self,
        hours: float | None = None,
        batch_size: int = 1000,
        progress: Callable[[int], None] | None = None,
    ) -> int:
        """Delete finished jobs created more than ``hours`` ago (24 if None), in batches.

        See :func:`django_dbq.retention.delete_old`; returns the number deleted.
        """
        return retention.delete_old(self, hours, batch_size, progress)

    def queue_depths(self, *, exclude_future_jobs: bool = False) -> dict[str, int]:
        waiting = self.runnable() if exclude_future_jobs else self.filter(state__in=self.RUNNABLE)
        rows = waiting.order_by().values("queue_name").annotate(count=Count("pk"))
        return {row["queue_name"]: row["count"] for row in rows}

    def seconds_until_next_retry(self, queue_names: list[str]) -> float | None:
        """Seconds until the first retry waiting in ``queue_names`` may run (None: none waits).

        A retry waits ``READY`` with a ``run_after``; jobs created with a ``run_after``
        (``NEW``) are not retries: they may be meant for next week.
        """
        first = (
            self.filter(queue_name__in=queue_names, state=states.State.READY)
            .filter(run_after__isnull=False)
            .order_by("run_after")
            .values_list("run_after", flat=True)
            .first()
        )
        return None if first is None else max((first - timezone.now()).total_seconds(), 0.0)

    def rescue_lapsed(
        self,
        *,
        limit: int = 100,
        held_by_caller: Collection[uuid.UUID] | Callable[[], Collection[uuid.UUID]] = (),
    ) -> int:
        """Take back up to ``limit`` of these jobs whose worker was lost (lease lapsed).

        Claims whose token is in ``held_by_caller`` are spared: the calling worker holds
        them and is alive.

        See :func:`django_dbq.engine.rescue_lapsed`; returns how many were rescued.
        """
        return engine.rescue_lapsed(self, limit=limit, held_by_caller=held_by_caller)

    def bulk_create(self, objs, *args, **kwargs):
        """Insert many jobs in a few statements, each prepared as :meth:`Job.save` would.

        The rows skip the ORM's per-value compiler work (``COPY`` on PostgreSQL). A
        ``unique_key`` already waiting or running (or twice in ``objs``) raises
        :class:`DuplicateJob` and inserts nothing (unless ``ignore_conflicts`` or
        ``update_conflicts`` asks for Django's handling of conflicts).
        """
        return bulk.create_jobs(self, list(objs), args, kwargs, super().bulk_create)

    def create(self, *, depends_on: Any = None, on_failure: str = "cancel", **fields: Any) -> Job:
        """Create a job; with ``depends_on`` (jobs), one that runs once they all completed.

        Such a job waits ``WAITING``; ``on_failure="run"`` runs it even if one of them
        fails or is cancelled (see :mod:`django_dbq.workflows`).
        """
        if depends_on is None:
            return super().create(**fields)
        return workflows.create_dependent(self, fields, list(depends_on), on_failure)


class JobManager(models.Manager.from_queryset(JobQuerySet)):
    """The job table's manager: :class:`JobQuerySet`'s vocabulary, also after ``using()``."""


class Job(models.Model):
    STATES = states.State  # django-db-queue 3.x's name for the states

    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    created = models.DateTimeField(default=timezone.now, db_index=True)
    modified = models.DateTimeField(auto_now=True)
    name = models.CharField(max_length=255)
    state = models.CharField(max_length=20, choices=STATES.choices, default=STATES.NEW)
    state.register_lookup(states.StatesIn)  # on this field only: see StatesIn
    next_task = models.CharField(max_length=255, blank=True)
    workspace = models.JSONField(null=True, blank=True, default=dict)
    queue_name = models.CharField(max_length=100, default="default")
    priority = models.SmallIntegerField(default=0)
    run_after = models.DateTimeField(null=True, blank=True)
    # Runs started; a run released by a graceful shutdown gives its attempt back.
    attempts = models.PositiveIntegerField(default=0)
    max_attempts = models.PositiveIntegerField(default=1)
    # Times a task asked to run its step again later (RetryLater); not failures.
    snoozes = models.PositiveIntegerField(default=0)
    # The claim: a fresh token per claim fences every write the worker makes.
    lease_token = models.UUIDField(null=True, blank=True, editable=False)
    lease_expires_at = models.DateTimeField(null=True, blank=True)
    worker_id = models.CharField(max_length=100, blank=True)
    started_at = models.DateTimeField(null=True, blank=True)
    finished_at = models.DateTimeField(null=True, blank=True)
    cancel_requested = models.BooleanField(default=False)
    # Kept for good, but held only while the job waits or runs: migration 0009's unique
    # index covers those rows alone (see "Unique jobs"). NULL, not "": never a duplicate.
    unique_key = models.CharField(max_length=200, null=True, blank=True)  # noqa: DJ001
    # At most ``concurrency_limit`` jobs with this key run at once, fleet-wide (see
    # django_dbq.keys); the limit is fixed when the job is created.
    concurrency_key = models.CharField(max_length=200, null=True, blank=True)  # noqa: DJ001
    concurrency_limit = models.PositiveIntegerField(null=True, blank=True)
    # Workflows (django_dbq.workflows): the workflow, how many of the jobs it depends on
    # it still waits for (while WAITING), how many jobs depend on it (None: none).
    workflow = models.ForeignKey(
        "django_dbq.Workflow",
        models.SET_NULL,
        null=True,
        blank=True,
        related_name="jobs",
        db_index=False,  # the (workflow, state) index serves it
    )
    waiting_for = models.PositiveIntegerField(null=True, blank=True, editable=False)
    dependents = models.PositiveIntegerField(null=True, blank=True, editable=False)
    error = models.TextField(blank=True)
    errors = models.JSONField(default=list, blank=True)
    # {"done", "total", "message"} as the task last reported it (django_dbq.progress).
    progress = models.JSONField(null=True, blank=True, editable=False)
    # The trace the job was created in (W3C carrier), continued by its steps' spans.
    trace_context = models.JSONField(null=True, blank=True, editable=False)

    objects = JobManager()

    # The claim this instance holds, set on the instances a worker claims. It fences
    # every write made through them (the worker's and a task's ``save()``), whatever
    # ``lease_token`` later reads (a task may ``refresh_from_db()`` after a rescue).
    claim_token: uuid.UUID | None = None
    # Set by the first progress report of a task (django_dbq.progress.Reporter).
    progress_reporter: Any = None

    class Meta:
        ordering = ["-priority", "created"]
        # "Has this workflow an unfinished job?", asked when one of its jobs ends, is
        # answered by the raw (workflow, state) index of migrations 0014 and 0015.
        # No constraints Django knows of: (name, unique_key) is unique among waiting and
        # running rows through raw SQL per database (migration 0009), since MariaDB/MySQL
        # have no partial unique constraint.

    def __str__(self) -> str:
        return f"{self.name} {self.id} ({self.state})"

    def save(self, *args: Any, **kwargs: Any) -> None:
        """Insert a new job (prepared, see :meth:`prepare_for_insert`), or update one.

        On an instance a worker holds (the job a task is given), ``save()`` writes only
        the workspace, and only while that claim is current: state, lease, cancel flag
        and every other column stay as the queue keeps them. It raises
        :class:`~django_dbq.exceptions.JobLost` (writing nothing) once the claim is gone.
        """
        if not self._state.adding:
            if self.claim_token is not None:
                self._save_as_holder(kwargs.get("update_fields"))
                return None
            return super().save(*args, **kwargs)
        self.prepare_for_insert()
        if self.unique_key is None:
            super().save(*args, **kwargs)
        else:
            self._insert_unique(*args, **kwargs)
        signals.send(signals.job_created, self)

    @property
    def fence_token(self) -> uuid.UUID | None:
        """The token writes on behalf of this instance are fenced on (None: nothing to fence)."""
        return self.claim_token if self.claim_token is not None else self.lease_token

    def _save_as_holder(self, update_fields: Any) -> None:
        if update_fields is None or "workspace" in set(update_fields):
            engine.save_workspace(self)

    def _insert_unique(self, *args: Any, **kwargs: Any) -> None:
        using = kwargs.get("using") or router.db_for_write(Job, instance=self)
        with engine.duplicate_job_raised(self, using):
            super().save(*args, **kwargs)

    @property
    def definition(self):
        return get_definition(self.name)

    def dependency_workspaces(self) -> dict[str, Any]:
        """The workspaces of the jobs this one depends on, by their ids (as strings)."""
        return workflows.dependency_workspaces(self)

    def set_progress(self, done: float, total: float | None = None, message: str = "") -> None:
        """From the task holding the job: how far it has got (:mod:`django_dbq.progress`)."""
        progress.reporter_of(self).report(progress.progress_value(done, total, message))

    async def aset_progress(self, done: float, total: float | None = None, message: str = ""):
        """:meth:`set_progress` from an ``async def`` task."""
        await sync_to_async(progress.report_from_thread)(self, done, total, message)

    def prepare_for_insert(self) -> None:
        """Fill in what a new job needs: first task, workspace, attempts, creation hook.

        Raises ``ValueError`` (before anything is written) for a ``queue_name`` that is not
        a non-empty string of at most 100 characters, a ``priority`` that is not an int
        from -32768 to 32767, or an invalid ``unique_key``.
        """
        enqueue.prepare(self)

    def update_next_task(self) -> None:
        """Advance ``next_task`` to the following step (``""`` after the last)."""
        self.next_task = self.definition.next_task_after(self.next_task) or ""

    @classmethod
    def get_queue_depths(cls, *, exclude_future_jobs: bool = False) -> dict[str, int]:
        """Queue name -> number of NEW and READY jobs."""
        return cls.objects.queue_depths(exclude_future_jobs=exclude_future_jobs)

    # -- changes of state (the engine's) ---------------------------------------

    def cancel(self) -> bool:
        """Cancel the job: a waiting job never runs; a running job stops after its step.

        A ``NEW``/``READY`` job becomes ``CANCELLED`` at once. For a ``PROCESSING`` or
        ``STOPPING`` job, cancellation is requested: the task may poll
        :meth:`is_cancel_requested`, and the worker ends the job ``CANCELLED`` after
        the running step (even if that was its last step) instead of going on. Returns
        True in both cases, False if the job had already finished (nothing is changed then).
        """
        return engine.cancel(self)

    def is_cancel_requested(self) -> bool:
        """Ask the database whether someone asked to cancel this (running) job."""
        return Job.objects.filter(pk=self.pk, cancel_requested=True).exists()

    def retry(self, from_step: str | None = None) -> None:
        """Run a failed or cancelled job again from its failed step, or from ``from_step``.

        ``from_step`` is the dotted path of one of the job's tasks. The attempt count
        starts again; the error history is kept. The workspace is the last checkpoint.
        Raises ``ValueError`` for a step the job does not have or a job that is not
        ``FAILED``/``CANCELLED``; nothing is changed then.
        """
        engine.retry(self, from_step)

    def fenced_update(self, *, unless_cancelled: bool = False, **values: Any) -> bool:
        """Write ``values`` only while this instance's claim token is still current.

        Returns False (and writes nothing) when the job was rescued and claimed
        again since this worker claimed it, or, with ``unless_cancelled``, when
        someone asked to cancel it.
        """
        return engine.fenced_update(self, unless_cancelled=unless_cancelled, **values)
