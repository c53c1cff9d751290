"""Bulk enqueue: rows written without the ORM's per-value compiler work, unique keys checked first.

PostgreSQL (psycopg 3) streams the rows with ``COPY``; MariaDB/MySQL and SQLite get
one ``executemany`` (multi-row ``INSERT`` statements on MySQL). On every path each
value goes through its field's preparation, as ``Model.save`` sends it, once per
distinct value.
"""

from __future__ import annotations

import datetime
import json
from functools import partial

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


def _prepared_rows(fields: list, jobs: list, connection, prepare_json=None) -> list[tuple]:
    """Each job's values as ``Model.save`` would send them: through each field's preparation.

    So a naive datetime under ``USE_TZ`` is read in ``TIME_ZONE``, with Django's warning,
    on every database, as ``create`` reads it. Built column by column, each value prepared once:
    most columns repeat one value (name, state, queue...), so those are prepared once
    per distinct value; timestamps, JSON and keys vary, so those once per object (the
    batch's ``modified`` and every None are one object). ``prepare_json`` replaces the
    JSON fields' preparation (COPY wants the text).
    """
    values = [job.__dict__ for job in jobs]
    columns = []
    for field in fields:
        column = [row[field.attname] for row in values]
        if isinstance(field, models.JSONField) and prepare_json is not None:
            prepare = prepare_json
        elif type(field).get_prep_value is models.DateTimeField.get_prep_value:
            prepare = _datetime_preparer(field, connection)
        else:
            prepare = partial(field.get_db_prep_save, connection=connection)
        varies = field.primary_key or isinstance(field, models.DateTimeField | models.JSONField)
        if not varies and _hashable(column) and len(set(map(type, column))) == 1:
            # One type (True == 1 would otherwise share a preparation): key by value.
            prepared = {value: prepare(value) for value in set(column)}
            columns.append([prepared[value] for value in column])
        else:
            # By identity: always safe, and unhashable values (JSON) are fine.
            objects = {id(value): value for value in column}
            if len(objects) == 1:  # all None, or the batch's one ``modified``
                columns.append([prepare(column[0])] * len(column))
                continue
            prepared = {key: prepare(value) for key, value in objects.items()}
            columns.append([prepared[id(value)] for value in column])
    return list(zip(*columns, strict=True))


def _hashable(column: list) -> bool:
    try:
        set(column)
    except TypeError:
        return False
    return True


def _datetime_preparer(field: models.DateTimeField, connection):
    """``field.get_db_prep_save``, skipping what leaves an aware datetime unchanged.

    ``get_prep_value`` only converts other types and makes naive datetimes aware:
    an aware ``datetime`` (each job's ``created``) needs the backend's adaptation alone.
    """
    prepare = partial(field.get_db_prep_save, connection=connection)
    adapt = partial(field.get_db_prep_value, connection=connection, prepared=True)

    def prepare_datetime(value):
        if value.__class__ is datetime.datetime and value.utcoffset() is not None:
            return adapt(value)
        return prepare(value)

    return prepare_datetime


def _execute_many(model: type[models.Model], connection, jobs: list, batch_size: int) -> None:
    fields = model._meta.concrete_fields
    quote = connection.ops.quote_name
    columns = ", ".join(quote(field.column) for field in fields)
    placeholders = ", ".join(["%s"] * len(fields))
    sql = f"INSERT INTO {quote(model._meta.db_table)} ({columns}) VALUES ({placeholders})"
    rows = _prepared_rows(fields, jobs, connection)
    # One transaction, as the ORM's bulk_create: SQLite would otherwise commit every row.
    with transaction.atomic(using=connection.alias, savepoint=False), connection.cursor() as cursor:
        for start in range(0, len(rows), batch_size):
            cursor.executemany(sql, rows[start : start + batch_size])


def _json_text(value) -> str | None:
    """A JSON field's value as COPY's text (as the field's own ``json.dumps`` would)."""
    if value is None:
        return None
    if not value and type(value) in _EMPTY_JSON:  # the defaults: {} and []
        return _EMPTY_JSON[type(value)]
    return json.dumps(value)


_EMPTY_JSON = {dict: "{}", list: "[]"}


def _copy_jobs(model: type[models.Model], connection, jobs: list) -> None:
    fields = model._meta.concrete_fields
    quote = connection.ops.quote_name
    columns = ", ".join(quote(field.column) for field in fields)
    rows = _prepared_rows(fields, jobs, connection, prepare_json=_json_text)
    with connection.cursor() as cursor, connection.wrap_database_errors:
        sql = f"COPY {quote(model._meta.db_table)} ({columns}) FROM STDIN"
        with cursor.cursor.copy(sql) as copy:
            for row in rows:
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
