"""Bulk enqueue helpers: ``COPY`` on PostgreSQL, and unique keys checked up front."""

from __future__ import annotations

import json

from django.db import models
from django.utils import timezone

from .exceptions import DuplicateJob


def copy_supported(connection) -> bool:
    if connection.vendor != "postgresql":
        return False
    from django.db.backends.postgresql.psycopg_any import is_psycopg3

    return is_psycopg3


def copy_jobs(model: type[models.Model], connection, using: str, jobs: list) -> None:
    """Insert ``jobs`` with ``COPY ... FROM STDIN``: the ORM's per-value work is the bottleneck."""
    fields = model._meta.concrete_fields
    attnames = [field.attname for field in fields]
    json_positions = [i for i, field in enumerate(fields) if isinstance(field, models.JSONField)]
    empty_json = {"{}": "{}", "[]": "[]"}
    now = timezone.now()
    quote = connection.ops.quote_name
    columns = ", ".join(quote(field.column) for field in fields)
    with connection.cursor() as cursor, connection.wrap_database_errors:
        sql = f"COPY {quote(model._meta.db_table)} ({columns}) FROM STDIN"
        with cursor.cursor.copy(sql) as copy:
            for job in jobs:
                job.modified = now
                values = job.__dict__
                row = [values[name] for name in attnames]
                for position in json_positions:
                    value = row[position]
                    if value is not None:
                        row[position] = empty_json[repr(value)] if not value else json.dumps(value)
                copy.write_row(row)
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
    if not keyed:
        return None
    wanted = {(job.name, job.unique_key) for job in keyed}
    candidates = model._default_manager.using(using).filter(
        name__in={name for name, _ in wanted}, unique_key__in={key for _, key in wanted}
    )
    return next(
        (job for job in candidates.order_by("created") if (job.name, job.unique_key) in wanted),
        None,
    )
