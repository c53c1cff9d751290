"""Bulk enqueue: rows written without the ORM's per-value compiler work, unique keys checked first.

PostgreSQL (psycopg 3) streams the rows with ``COPY``; MariaDB/MySQL and SQLite get
one ``executemany`` (multi-row ``INSERT`` statements on MySQL), with each distinct
value prepared once.
"""

from __future__ import annotations

import json

from django.db import models, transaction
from django.utils import timezone

from .exceptions import DuplicateJob


def can_insert_directly(connection) -> bool:
    """Everywhere but PostgreSQL through psycopg2 (no ``COPY`` from Python rows there)."""
    if connection.vendor != "postgresql":
        return True
    from django.db.backends.postgresql.psycopg_any import is_psycopg3

    return is_psycopg3


def insert_jobs(
    model: type[models.Model], connection, using: str, jobs: list, batch_size: int | None = None
) -> None:
    """Insert prepared ``jobs``: the ORM's per-value work, not the database, is the bottleneck."""
    now = timezone.now()
    for job in jobs:
        job.modified = now  # auto_now, as Model.save would
        if job.pk is None:  # Job(id=None): the default, as Model.save would
            job.pk = model._meta.pk.get_pk_value_on_save(job)
    if connection.vendor == "postgresql":
        _copy_jobs(model, connection, jobs)
    else:
        _execute_many(model, connection, jobs, batch_size or 5000)
    for job in jobs:
        job._state.adding = False
        job._state.db = using


def _execute_many(model: type[models.Model], connection, jobs: list, batch_size: int) -> None:
    fields = model._meta.concrete_fields
    quote = connection.ops.quote_name
    columns = ", ".join(quote(field.column) for field in fields)
    placeholders = ", ".join(["%s"] * len(fields))
    sql = f"INSERT INTO {quote(model._meta.db_table)} ({columns}) VALUES ({placeholders})"
    # Most columns repeat one value (name, state, queue...): prepare each distinct value
    # once. Keyed by type too (True == 1); timestamps, JSON and the key vary: never cached.
    cached = [
        not (field.primary_key or isinstance(field, models.DateTimeField | models.JSONField))
        for field in fields
    ]
    prepared: list[dict] = [{} for _ in fields]
    rows = []
    for job in jobs:
        row = []
        for field, use_cache, cache in zip(fields, cached, prepared, strict=True):
            value = getattr(job, field.attname)
            if not use_cache and value is not None:  # None is one value: always cached
                row.append(field.get_db_prep_save(value, connection))
                continue
            key = (type(value), value)
            if key not in cache:
                cache[key] = field.get_db_prep_save(value, connection)
            row.append(cache[key])
        rows.append(row)
    # One transaction, as the ORM's bulk_create: SQLite would otherwise commit every row.
    with transaction.atomic(using=connection.alias, savepoint=False), connection.cursor() as cursor:
        for start in range(0, len(rows), batch_size):
            cursor.executemany(sql, rows[start : start + batch_size])


def _copy_jobs(model: type[models.Model], connection, jobs: list) -> None:
    fields = model._meta.concrete_fields
    attnames = [field.attname for field in fields]
    json_positions = [i for i, field in enumerate(fields) if isinstance(field, models.JSONField)]
    empty_json = {"{}": "{}", "[]": "[]"}
    quote = connection.ops.quote_name
    columns = ", ".join(quote(field.column) for field in fields)
    with connection.cursor() as cursor, connection.wrap_database_errors:
        sql = f"COPY {quote(model._meta.db_table)} ({columns}) FROM STDIN"
        with cursor.cursor.copy(sql) as copy:
            for job in jobs:
                values = job.__dict__
                row = [values[name] for name in attnames]
                for position in json_positions:
                    value = row[position]
                    if value is not None:
                        row[position] = empty_json[repr(value)] if not value else json.dumps(value)
                copy.write_row(row)


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
    jobs = model._default_manager.using(using)  # a JobQuerySet
    # Only a waiting or running job holds its key; finished ones keep theirs on the row.
    jobs = jobs.filter(state__in=jobs.HOLDING_KEY).order_by("created")
    # In slices: SQLite limits the parameters of one statement.
    for start in range(0, len(keys), 500):
        for job in jobs.filter(unique_key__in=keys[start : start + 500]):
            if (job.name, job.unique_key) in wanted:
                return job
    return None
