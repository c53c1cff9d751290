"""The Job model, its query vocabulary and its state transitions."""

from __future__ import annotations

import contextlib
import datetime
import json
import logging
import math
import uuid
from collections.abc import Callable, Iterator
from typing import Any

from django.db import IntegrityError, connections, models, router, transaction
from django.db.models import Case, Count, F, Q, Value, When
from django.utils import timezone

from . import backends, bulk, conf, signals
from .definitions import get_definition
from .exceptions import DuplicateJob, InvalidWorkspace, JobLost

logger = logging.getLogger(__name__)

DEFAULT_DELETE_JOBS_AFTER_HOURS = 24
# The range of Job.priority's column (a SMALLINT on every supported database).
PRIORITY_RANGE = (-32768, 32767)


def _check_placement(job: Job) -> None:
    """Refuse a queue name no worker can serve and a priority the column cannot hold."""
    if not conf.is_queue_name(job.queue_name):
        raise ValueError(
            f"queue_name must be a non-empty string of at most {conf.QUEUE_NAME_MAX_LENGTH} "
            f"characters, not {job.queue_name!r}."
        )
    low, high = PRIORITY_RANGE
    priority = job.priority
    if isinstance(priority, bool) or not isinstance(priority, int) or not low <= priority <= high:
        raise ValueError(f"priority must be a whole number from {low} to {high}, not {priority!r}.")


def check_workspace(workspace: Any) -> dict:
    """``workspace`` as stored ({} for None); :class:`InvalidWorkspace` unless a JSON dict."""
    if workspace is None:
        return {}
    if not isinstance(workspace, dict):
        raise InvalidWorkspace(f"A job's workspace must be a dict, not {type(workspace).__name__}.")
    try:
        json.dumps(workspace, allow_nan=False)
    except (TypeError, ValueError) as error:
        raise InvalidWorkspace(f"A job's workspace must be JSON-serialisable: {error}") from None
    return workspace


class JobQuerySet(models.QuerySet):
    RUNNABLE = ("NEW", "READY")
    ACTIVE = ("PROCESSING", "STOPPING")
    FINISHED = ("COMPLETE", "FAILED", "CANCELLED")
    # The states in which a job holds its unique key (see migration 0009).
    HOLDING_KEY = (*RUNNABLE, *ACTIVE)

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
        """The job a worker of ``queue_name`` would run next, without claiming it."""
        return self.to_process(queue_name).first()

    def delete_old(
        self,
        hours: float | None = None,
        batch_size: int = 1000,
        progress: Callable[[int], None] | None = None,
    ) -> int:
        """Delete finished jobs created more than ``hours`` ago (24 if None), in batches.

        ``progress``, if given, is called after each batch with the number it deleted.

        A ``STOPPING`` job is deleted only when it has no lease (left by django-db-queue
        3.x); one with a lease belongs to a worker, or is rescued once that lapses.
        """
        hours = DEFAULT_DELETE_JOBS_AFTER_HOURS if hours is None else hours
        if (
            isinstance(hours, bool)
            or not isinstance(hours, int | float)
            or not math.isfinite(hours)
            or hours < 0
        ):
            raise ValueError(f"hours must be a number of at least 0, not {hours!r}.")
        conf.require_whole_number("batch_size", batch_size)
        now = timezone.now()
        old = self.filter(created__lte=now - datetime.timedelta(hours=hours)).filter(
            Q(state__in=self.FINISHED) | Q(state="STOPPING", lease_expires_at__isnull=True)
        )
        deleted = 0
        while True:
            ids = list(old.order_by().values_list("pk", flat=True)[:batch_size])
            if not ids:
                return deleted
            # The conditions again: a job retried by hand since the SELECT is kept.
            batch = old.filter(pk__in=ids).delete()[0]
            deleted += batch
            if progress is not None:
                progress(batch)

    def queue_depths(self, *, exclude_future_jobs: bool = False) -> dict[str, int]:
        waiting = self.runnable() if exclude_future_jobs else self.filter(state__in=self.RUNNABLE)
        rows = waiting.order_by().values("queue_name").annotate(count=Count("pk"))
        return {row["queue_name"]: row["count"] for row in rows}


class JobManager(models.Manager.from_queryset(JobQuerySet)):
    def bulk_create(self, objs, *args, **kwargs):
        """Insert many jobs in a few statements, each prepared as :meth:`Job.save` would.

        The rows skip the ORM's per-value compiler work (``COPY`` on PostgreSQL). A
        ``unique_key`` already waiting or running (or twice in ``objs``) raises
        :class:`DuplicateJob` and inserts nothing (unless ``ignore_conflicts`` or
        ``update_conflicts`` asks for Django's handling of conflicts).
        """
        objs = list(objs)
        batch_size = args[0] if args else kwargs.get("batch_size")
        if batch_size is not None:
            conf.require_whole_number("batch_size", batch_size)
        for job in objs:
            job.prepare_for_insert()
        using = self._db or router.db_for_write(self.model, **self._hints)
        connection = connections[using]
        plain = not args[1:] and set(kwargs) <= {"batch_size"}
        keyed = bulk.keyed_jobs(objs) if plain else []
        try:
            # A savepoint keeps the caller's transaction usable after a duplicate.
            with transaction.atomic(using=using) if keyed else contextlib.nullcontext():
                if objs and plain and bulk.can_insert_directly(connection):
                    bulk.insert_jobs(self.model, connection, using, objs, batch_size)
                    created = objs
                else:
                    created = super().bulk_create(objs, *args, **kwargs)
        except IntegrityError:
            existing = bulk.existing_duplicate(self.model, using, keyed)
            if existing is None:
                raise
            raise DuplicateJob(
                f"A {existing.name!r} job with unique key {existing.unique_key!r} is already "
                f"waiting or running (job {existing.pk}); no job was inserted.",
                existing_job=existing,
            ) from None
        if signals.job_created.has_listeners(Job):
            for job in created:
                signals.job_created.send(sender=Job, job=job)
        return created


class Job(models.Model):
    class STATES(models.TextChoices):
        NEW = "NEW", "New"
        READY = "READY", "Ready"
        PROCESSING = "PROCESSING", "Processing"
        STOPPING = "STOPPING", "Stopping"
        FAILED = "FAILED", "Failed"
        COMPLETE = "COMPLETE", "Complete"
        CANCELLED = "CANCELLED", "Cancelled"

    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    created = models.DateTimeField(default=timezone.now, db_index=True)
    modified = models.DateTimeField(auto_now=True)
    name = models.CharField(max_length=255)
    state = models.CharField(max_length=20, choices=STATES.choices, default=STATES.NEW)
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
    error = models.TextField(blank=True)
    errors = models.JSONField(default=list, blank=True)

    objects = JobManager()

    # The claim this instance holds, set on the instances a worker claims. It fences
    # every write made through them (the worker's and a task's ``save()``), whatever
    # ``lease_token`` later reads (a task may ``refresh_from_db()`` after a rescue).
    claim_token: uuid.UUID | None = None

    # What a task may change while its worker holds the job; the queue owns the rest.
    HOLDER_FIELDS = ("workspace",)

    class Meta:
        ordering = ["-priority", "created"]
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
        signals.job_created.send(sender=Job, job=self)

    @property
    def fence_token(self) -> uuid.UUID | None:
        """The token writes on behalf of this instance are fenced on (None: nothing to fence)."""
        return self.claim_token if self.claim_token is not None else self.lease_token

    def _save_as_holder(self, update_fields: Any) -> None:
        names = self.HOLDER_FIELDS
        if update_fields is not None:
            names = tuple(name for name in names if name in set(update_fields))
        if not names:
            return
        values = {name: getattr(self, name) for name in names}
        if "workspace" in values:
            values["workspace"] = check_workspace(values["workspace"])
        if not self.fenced_update(**values):
            raise JobLost(f"Job {self.pk} is no longer held by this worker; nothing was saved.")

    def _insert_unique(self, *args: Any, **kwargs: Any) -> None:
        using = kwargs.get("using") or router.db_for_write(Job, instance=self)
        with _duplicate_job_raised(self, using):
            super().save(*args, **kwargs)

    @property
    def definition(self):
        return get_definition(self.name)

    def prepare_for_insert(self) -> None:
        """Fill in what a new job needs: first task, workspace, attempts, creation hook.

        Raises ``ValueError`` (before anything is written) for a ``queue_name`` that is not
        a non-empty string of at most 100 characters, a ``priority`` that is not an int
        from -32768 to 32767, or an invalid ``unique_key``.
        """
        definition = get_definition(self.name)
        if self.unique_key is not None and (
            not isinstance(self.unique_key, str) or not 0 < len(self.unique_key) <= 200
        ):
            raise ValueError("unique_key must be a string of 1 to 200 characters or None.")
        _check_placement(self)
        self.next_task = definition.next_task_after(None)
        self.workspace = check_workspace(self.workspace)
        self.max_attempts = definition.max_attempts
        hook = definition.hook("creation_hook")
        if hook is not None:
            hook(self)
            self.workspace = check_workspace(self.workspace)
            _check_placement(self)  # as the hook left them

    def update_next_task(self) -> None:
        """Advance ``next_task`` to the following step (``""`` after the last)."""
        self.next_task = self.definition.next_task_after(self.next_task) or ""

    @classmethod
    def get_queue_depths(cls, *, exclude_future_jobs: bool = False) -> dict[str, int]:
        """Queue name -> number of NEW and READY jobs."""
        return cls.objects.queue_depths(exclude_future_jobs=exclude_future_jobs)

    # -- transitions made by people (API, command, admin) ---------------------

    def cancel(self) -> bool:
        """Cancel the job: a waiting job never runs; a running job stops after its step.

        A ``NEW``/``READY`` job becomes ``CANCELLED`` at once. For a ``PROCESSING`` or
        ``STOPPING`` job, cancellation is requested: the task may poll
        :meth:`is_cancel_requested`, and the worker ends the job ``CANCELLED`` after
        the running step (even if that was its last step) instead of going on. Returns
        True in both cases, False if the job had already finished (nothing is changed then).
        """
        now = timezone.now()
        waiting = Q(state__in=JobQuerySet.RUNNABLE)
        # One statement, so no interleaving with a worker's claim or release can slip
        # between "is it waiting?" and "is it running?". MySQL evaluates assignments
        # left to right with the new values: ``state`` comes last.
        updated = Job.objects.filter(
            pk=self.pk, state__in=(*JobQuerySet.RUNNABLE, *JobQuerySet.ACTIVE)
        ).update(
            cancel_requested=Case(When(waiting, then=Value(False)), default=Value(True)),
            finished_at=Case(When(waiting, then=Value(now)), default=F("finished_at")),
            modified=now,
            state=Case(When(waiting, then=Value(self.STATES.CANCELLED)), default=F("state")),
        )
        self.refresh_from_db()
        # Cancelled here (not by its worker since): the row carries this call's timestamp.
        if updated and self.state == self.STATES.CANCELLED and self.finished_at == now:
            signals.job_cancelled.send(sender=Job, job=self)
        return bool(updated)

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
        self.refresh_from_db(fields=["state", "next_task"])
        tasks = self.definition.tasks
        step = from_step or self.next_task or tasks[0]
        if step not in tasks:
            raise ValueError(f"{step!r} is not a step of {self.name!r}; steps are {list(tasks)}.")
        now = timezone.now()
        # READY, the job holds its unique key again: another job may have taken it.
        with _duplicate_job_raised(self, router.db_for_write(Job)):
            updated = Job.objects.filter(pk=self.pk, state__in=("FAILED", "CANCELLED")).update(
                state=self.STATES.READY,
                next_task=step,
                attempts=0,
                snoozes=0,
                max_attempts=self.definition.max_attempts,
                run_after=None,
                cancel_requested=False,
                finished_at=None,
                modified=now,
            )
        if not updated:
            raise ValueError(f"Only FAILED or CANCELLED jobs can be retried; {self} is not.")
        self.refresh_from_db()
        signals.job_retried.send(sender=Job, job=self, delay=0.0, manual=True)

    # -- writes made by the worker holding the claim --------------------------

    def fenced_update(self, *, unless_cancelled: bool = False, **values: Any) -> bool:
        """Write ``values`` only while this instance's claim token is still current.

        Returns False (and writes nothing) when the job was rescued and claimed
        again since this worker claimed it, or, with ``unless_cancelled``, when
        someone asked to cancel it.
        """
        token = self.fence_token
        if token is None:
            return False  # no claim to fence on: never a write that matches a NULL token
        values["modified"] = timezone.now()
        connection = connections[self._state.db or router.db_for_write(Job)]
        fields = [self._meta.get_field(name) for name in values]
        assignments = ", ".join(f"{connection.ops.quote_name(f.column)} = %s" for f in fields)
        params = [f.get_db_prep_save(values[f.name], connection) for f in fields]
        sql = (
            f"UPDATE {connection.ops.quote_name(self._meta.db_table)} SET {assignments} "
            "WHERE id = %s AND lease_token = %s"
        )
        if unless_cancelled:
            sql += " AND cancel_requested = %s"
        pk = self._meta.pk.get_db_prep_value(self.pk, connection)
        token = self._meta.get_field("lease_token").get_db_prep_value(token, connection)
        params = [*params, pk, token, *([False] if unless_cancelled else [])]
        # The engine may commit this bookkeeping faster (PostgreSQL: without the WAL flush).
        applied = backends.for_connection(connection).execute_update(connection, sql, params) == 1
        if applied:
            for name, value in values.items():
                setattr(self, name, value)
        return applied


@contextlib.contextmanager
def _duplicate_job_raised(job: Job, using: str) -> Iterator[None]:
    """Write ``job`` in a savepoint; a unique-key conflict raises :class:`DuplicateJob`.

    The savepoint keeps the caller's transaction usable after a duplicate. The job
    reported is the waiting or running one holding the key (finished jobs keep theirs).
    """
    try:
        with transaction.atomic(using=using):
            yield
    except IntegrityError:
        existing = (
            Job.objects.using(using)
            .filter(name=job.name, unique_key=job.unique_key, state__in=JobQuerySet.HOLDING_KEY)
            .exclude(pk=job.pk)
            .first()
        )
        raise DuplicateJob(
            f"A {job.name!r} job with unique key {job.unique_key!r} is already waiting or "
            f"running{f' (job {existing.pk})' if existing else ''}.",
            existing_job=existing,
        ) from None


class Schedule(models.Model):
    """The last tick enqueued for each recurring job of ``DBQ_SCHEDULE``.

    Workers advance ``last_tick`` with a conditional UPDATE, so however many of
    them run, each tick enqueues one job.
    """

    name = models.CharField(max_length=100, primary_key=True)
    last_tick = models.DateTimeField()

    def __str__(self) -> str:
        return f"{self.name} (last tick {self.last_tick})"
