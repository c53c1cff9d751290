"""Helpers shared by the commands that act on jobs by id."""

from __future__ import annotations

import uuid

from django.core.management.base import CommandError
from django.db.models import Model

from django_dbq.models import Job


def find_jobs(ids: list[str]) -> list[Job]:
    """The jobs with these ids, in the order given; CommandError if any id is bad or unknown."""
    return find_rows(Job, ids, "job")


def find_rows(model: type[Model], ids: list[str], what: str) -> list[Model]:
    """The ``model`` rows with these ids (``what``: their name in messages), in the order
    given; CommandError if any id is bad or unknown, so that a command changes all or none."""
    if not ids:
        raise CommandError(f"{what}_id: give at least one {what} id.")
    parsed = []
    for raw in ids:
        try:
            parsed.append(raw if isinstance(raw, uuid.UUID) else uuid.UUID(str(raw)))
        except ValueError:
            raise CommandError(f"{what}_id: {raw!r} is not a {what} id (a UUID).")
    found = model.objects.in_bulk(parsed)
    missing = [str(pk) for pk in parsed if pk not in found]
    if missing:
        raise CommandError(f"No {what} with id {', '.join(missing)}.")
    return [found[pk] for pk in dict.fromkeys(parsed)]
