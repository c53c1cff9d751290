"""Rows in and out without the ORM's per-row compiler work, on every database.

Shared by the engines: values prepared as ``Model.save`` would send them (for the
bulk insert paths), and raw rows turned into model instances as a queryset would
(for the claim).
"""

from __future__ import annotations

import datetime
from collections.abc import Callable, Sequence
from functools import partial
from typing import Any

from django.db import models


def prepared_rows(
    fields: Sequence[models.Field],
    objs: list[models.Model],
    connection,
    prepare_json: Callable[[Any], Any] | None = None,
) -> list[tuple]:
    """Each object's values as ``Model.save`` would send them: through each field's preparation.

    So a naive datetime under ``USE_TZ`` is read in ``TIME_ZONE``, with Django's warning,
    on every database, as ``create`` reads it. Built column by column, each value prepared once:
    most columns repeat one value (name, state, queue...), so those are prepared once
    per distinct value; timestamps, JSON and keys vary, so those once per object (the
    batch's ``modified`` and every None are one object). ``prepare_json`` replaces the
    JSON fields' preparation (COPY wants the text).
    """
    values = [obj.__dict__ for obj in objs]
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


def _datetime_preparer(field: models.DateTimeField, connection) -> Callable[[Any], Any]:
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


def instances_from_rows(
    model: type[models.Model], connection, fields: Sequence[models.Field], rows: list
) -> list[models.Model]:
    """``rows`` (one value per field of ``fields``) as instances, converted as a queryset would."""
    if not rows:
        return []
    compiler = model._default_manager.none().query.get_compiler(connection=connection)
    columns = [field.get_col(model._meta.db_table) for field in fields]
    converters = compiler.get_converters(columns)
    if converters:
        rows = list(compiler.apply_converters(rows, converters))
    names = [field.attname for field in fields]
    return [model.from_db(connection.alias, names, row) for row in rows]
