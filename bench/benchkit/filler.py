"""Fast filler rows for the backlog scenario, for any Django job model.

One real row is created through the ORM and read back; its column values are the
template for every filler row, so columns that the library adds later need no
change here. The rows are then inserted with one ``INSERT ... SELECT`` over a
number series per state: ``generate_series`` on PostgreSQL, the ``seq_1_to_N``
tables of MariaDB's Sequence engine, a recursive CTE on SQLite. Primary keys of
UUID type are generated in SQL. The table is analysed afterwards, as a long-lived
production table would be.
"""

from __future__ import annotations

from typing import Any

from django.db import connection, models, transaction


def _uuid_sql(field: models.Field) -> str:
    vendor = connection.vendor
    if vendor == "postgresql":
        return "gen_random_uuid()"
    if vendor == "mysql":
        if field.db_type(connection) == "uuid":
            return "UUID()"
        return "REPLACE(UUID(), '-', '')"
    return "lower(hex(randomblob(16)))"


def _series(n: int) -> tuple[str, str, list[Any]]:
    """(prefix, FROM clause, params) yielding ``n`` rows."""
    vendor = connection.vendor
    if vendor == "postgresql":
        return "", "FROM generate_series(1, %s)", [n]
    if vendor == "mysql":
        return "", f"FROM seq_1_to_{int(n)}", []
    prefix = (
        "WITH RECURSIVE bench_seq(x) AS "
        "(SELECT 1 UNION ALL SELECT x + 1 FROM bench_seq WHERE x < %s) "
    )
    return prefix, "FROM bench_seq", [n]


def insert_rows(model: type[models.Model], template: models.Model, n: int) -> None:
    """Insert ``n`` copies of ``template`` (fresh primary keys) in one statement."""
    if n <= 0:
        return
    meta = model._meta
    quote = connection.ops.quote_name
    columns: list[str] = []
    exprs: list[str] = []
    params: list[Any] = []
    for field in meta.concrete_fields:
        if field.primary_key:
            if isinstance(field, models.UUIDField):
                columns.append(quote(field.column))
                exprs.append(_uuid_sql(field))
            continue  # auto-increment keys are left to the database
        columns.append(quote(field.column))
        exprs.append("%s")
        params.append(field.get_db_prep_save(getattr(template, field.attname), connection))
    prefix, source, series_params = _series(n)
    sql = (
        f"INSERT INTO {quote(meta.db_table)} ({', '.join(columns)}) "
        f"{prefix}SELECT {', '.join(exprs)} {source}"
    )
    # The CTE's parameter comes first in the SQLite statement, last elsewhere.
    ordered = series_params + params if prefix else params + series_params
    with connection.cursor() as cursor:
        cursor.execute(sql, ordered)


def truncate(model: type[models.Model]) -> None:
    """Remove every row of the model's table, the fast way for each database."""
    table = connection.ops.quote_name(model._meta.db_table)
    # Tables that point at it (our workflow dependencies) are emptied with it.
    statements = {
        "sqlite": [f"DELETE FROM {table}"],
        "postgresql": [f"TRUNCATE TABLE {table} CASCADE"],
        "mysql": [
            "SET FOREIGN_KEY_CHECKS = 0",
            f"TRUNCATE TABLE {table}",
            "SET FOREIGN_KEY_CHECKS = 1",
        ],
    }[connection.vendor]
    with connection.cursor() as cursor:
        for statement in statements:
            cursor.execute(statement)


def analyze(model: type[models.Model]) -> None:
    table = connection.ops.quote_name(model._meta.db_table)
    statement = {
        "postgresql": f"ANALYZE {table}",
        "mysql": f"ANALYZE TABLE {table}",
    }.get(connection.vendor, "ANALYZE")
    with connection.cursor() as cursor:
        cursor.execute(statement)
        if connection.vendor == "mysql":
            cursor.fetchall()


def fill(
    model: type[models.Model],
    make_template: Any,
    finished: int,
    queued: int,
    finished_changes: dict[str, Any],
) -> None:
    """Insert ``finished`` rows altered by ``finished_changes`` and ``queued`` runnable rows.

    ``make_template()`` must create one runnable job through the ORM and return it;
    that row is deleted again once the filler is in.
    """
    template = make_template()
    template = model._default_manager.get(pk=template.pk)
    with transaction.atomic():
        insert_rows(model, template, queued)
        for attname, value in finished_changes.items():
            setattr(template, attname, value)
        insert_rows(model, template, finished)
        model._default_manager.filter(pk=template.pk).delete()
    analyze(model)
