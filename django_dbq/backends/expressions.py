"""Expressions each database computes in its own words (the admin's activity charts)."""

from __future__ import annotations

from typing import Any

from django.db import NotSupportedError
from django.db.models import CharField, F, FloatField, Func


class SecondsBetween(Func):
    """Seconds from the ``start`` column to the ``end`` column, as a float, computed natively.

    Django's temporal subtraction calls a Python function per row on SQLite: summed over
    a day of finished jobs, that was most of the overview page's time.
    """

    output_field = FloatField()

    def __init__(self, start: str, end: str) -> None:
        super().__init__(F(start), F(end))

    def _sides(self, compiler, connection) -> tuple[str, list, str, list]:
        start, end = self.get_source_expressions()
        start_sql, start_params = compiler.compile(start)
        end_sql, end_params = compiler.compile(end)
        return start_sql, list(start_params), end_sql, list(end_params)

    def as_postgresql(self, compiler, connection, **extra: Any):
        start, start_params, end, end_params = self._sides(compiler, connection)
        return f"EXTRACT(EPOCH FROM ({end} - {start}))::float", [*end_params, *start_params]

    def as_mysql(self, compiler, connection, **extra: Any):
        start, start_params, end, end_params = self._sides(compiler, connection)
        sql = f"(TIMESTAMPDIFF(MICROSECOND, {start}, {end}) / 1000000.0)"
        return sql, [*start_params, *end_params]

    def as_sqlite(self, compiler, connection, **extra: Any):
        start, start_params, end, end_params = self._sides(compiler, connection)
        sql = f"((julianday({end}) - julianday({start})) * 86400.0)"
        return sql, [*end_params, *start_params]

    def as_sql(self, compiler, connection, **extra: Any):
        raise NotSupportedError(f"SecondsBetween does not know {connection.vendor}.")


class FinishedState(Func):
    """A job's state, for queries of finished jobs (the activity charts').

    On MariaDB/MySQL it is the virtual column (NULL until the job finishes) that
    migration 0016 puts in the covering ``finished_at`` index, so that a query reading
    only indexed columns never reads the table. (Unqualified: for queries of the job
    table alone.)
    """

    output_field = CharField()
    template = "%(expressions)s"

    def __init__(self) -> None:
        super().__init__(F("state"))

    def as_mysql(self, compiler, connection, **extra: Any):
        return "dbq_finished_state", []


class RunSeconds(SecondsBetween):
    """Seconds from a job's (last) start to its finish (NULL unless it has both), as
    :class:`SecondsBetween`; on MariaDB/MySQL the indexed virtual column of migration 0016."""

    def __init__(self) -> None:
        super().__init__("started_at", "finished_at")

    def as_mysql(self, compiler, connection, **extra: Any):
        return "dbq_run_seconds", []
