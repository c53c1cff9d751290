"""Bulk enqueue: rows written without the ORM's per-value compiler work, unique keys checked first.

The rows are written by the database's engine (``django_dbq.backends``): PostgreSQL
(psycopg 3) streams them with ``COPY``; MariaDB/MySQL and SQLite get one
``executemany`` (multi-row ``INSERT`` statements on MySQL). On every path each
value goes through its field's preparation, as ``Model.save`` sends it, once per
distinct value.
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable
from typing import Any

from django.db import IntegrityError, connections, models, router, transaction
from django.utils import timezone

from . import backends, conf, signals
from .exceptions import DuplicateJob
from .states import HOLDING_KEY


def create_jobs(
    manager: models.Manager,
    jobs: list,
    args: tuple,
    kwargs: dict[str, Any],
    django_bulk_create: Callable[..., list],
) -> list:
    """``Job.objects.bulk_create``: each job prepared as ``save`` would, then inserted.

    A plain call (no conflict handling asked for) writes the rows directly; others
    go through ``django_bulk_create``. A ``unique_key`` already waiting or running
    (or twice in ``jobs``) raises :class:`DuplicateJob` and inserts nothing.
    """
    batch_size = args[0] if args else kwargs.get("batch_size")
    if batch_size is not None:
        conf.require_whole_number("batch_size", batch_size)
    for job in jobs:
        job.prepare_for_insert()
    model = manager.model
    using = manager._db or router.db_for_write(model, **manager._hints)
    connection = connections[using]
    plain = not args[1:] and set(kwargs) <= {"batch_size"}
    keyed = keyed_jobs(jobs) if plain else []
    try:
        # A savepoint keeps the caller's transaction usable after a duplicate.
        with transaction.atomic(using=using) if keyed else contextlib.nullcontext():
            if jobs and plain and can_insert_directly(connection):
                insert_jobs(model, connection, using, jobs, batch_size)
                created = jobs
            else:
                created = django_bulk_create(jobs, *args, **kwargs)
    except IntegrityError:
        existing = existing_duplicate(model, using, keyed)
        if existing is None:
            raise
        raise DuplicateJob(
            f"A {existing.name!r} job with unique key {existing.unique_key!r} is already "
            f"waiting or running (job {existing.pk}); no job was inserted.",
            existing_job=existing,
        ) from None
    if signals.job_created.has_listeners(model):
        for job in created:
            signals.send(signals.job_created, job)
    return created


def can_insert_directly(connection) -> bool:
    """Whether :func:`insert_jobs` works here (not on PostgreSQL through psycopg2: no ``COPY``)."""
    return backends.for_connection(connection).can_insert_directly()


def insert_jobs(
    model: type[models.Model], connection, using: str, jobs: list, batch_size: int | None = None
) -> None:
    """Insert prepared ``jobs``: the ORM's per-value work, not the database, is the bottleneck."""
    now = timezone.now()
    for job in jobs:
        job.modified = now  # auto_now, as Model.save would
        if job.pk is None:  # Job(id=None): the default, as Model.save would
            job.pk = model._meta.pk.get_pk_value_on_save(job)
    backends.for_connection(connection).insert_rows(model, connection, jobs, batch_size)
    for job in jobs:
        job._state.adding = False
        job._state.db = using


def keyed_jobs(jobs: list) -> list:
    """The jobs that carry a ``unique_key``; :class:`DuplicateJob` if two share one."""
    keyed, seen = [], set()
    for job in jobs:
        if job.unique_key is None:
            continue
        key = (job.name, job.unique_key)
        if key in seen:
            raise DuplicateJob(
                f"Two {job.name!r} jobs with unique key {job.unique_key!r} in one bulk_create;"
                " no job was inserted."
            )
        seen.add(key)
        keyed.append(job)
    return keyed


def existing_duplicate(model: type[models.Model], using: str, keyed: list):
    """A stored job that one of ``keyed`` collides with, or None."""
    wanted = {(job.name, job.unique_key) for job in keyed}
    keys = sorted({key for _, key in wanted})
    # Only a waiting or running job holds its key; finished ones keep theirs on the row.
    jobs = model._default_manager.using(using).filter(state__in=HOLDING_KEY).order_by("created")
    # In slices: SQLite limits the parameters of one statement.
    for start in range(0, len(keys), 500):
        for job in jobs.filter(unique_key__in=keys[start : start + 500]):
            if (job.name, job.unique_key) in wanted:
                return job
    return None
