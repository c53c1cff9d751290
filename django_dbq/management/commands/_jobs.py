"""Helpers shared by the commands that act on jobs by id."""

from __future__ import annotations

import uuid

from django.core.management.base import CommandError

from django_dbq.models import Job


def find_jobs(ids: list[str]) -> list[Job]:
    """The jobs with these ids, in the order given; CommandError if any id is bad or unknown."""
    if not ids:
        raise CommandError("job_id: give at least one job id.")
    parsed = []
    for raw in ids:
        try:
            parsed.append(raw if isinstance(raw, uuid.UUID) else uuid.UUID(str(raw)))
        except ValueError:
            raise CommandError(f"job_id: {raw!r} is not a job id (a UUID).")
    found = Job.objects.in_bulk(parsed)
    missing = [str(pk) for pk in parsed if pk not in found]
    if missing:
        raise CommandError(f"No job with id {', '.join(missing)}.")
    return [found[pk] for pk in dict.fromkeys(parsed)]
