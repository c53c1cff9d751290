"""Expressions each database computes in its own words (the admin's activity charts)."""

from __future__ import annotations

from typing import Any

from django.db import NotSupportedError
from django.db.models import F, FloatField, Func


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
