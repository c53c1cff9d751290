"""Deleting old finished jobs (``delete_old_jobs``, ``Job.objects.delete_old``)."""

from __future__ import annotations

import datetime
import math
from collections.abc import Callable
from typing import Any

from django.db.models import Exists, OuterRef, Q
from django.utils import timezone

from . import conf, keys
from .states import FINISHED, UNFINISHED, State

DEFAULT_DELETE_JOBS_AFTER_HOURS = 24


def delete_old(
    jobs: Any,
    hours: float | None = None,
    batch_size: int = 1000,
    progress: Callable[[int], None] | None = None,
) -> int:
    """Delete the finished jobs among ``jobs`` created more than ``hours`` ago (24 if None),
    in batches of ``batch_size``; the number deleted.

    ``progress``, if given, is called after each batch with the number it deleted.

    A ``STOPPING`` job is deleted only when it has no lease (left by django-db-queue
    3.x); one with a lease belongs to a worker, or is rescued once that lapses. A job
    of a workflow that has not finished is kept: its dependents may still read it.
    Rows of concurrency keys no job holds any more are deleted too.
    """
    hours = DEFAULT_DELETE_JOBS_AFTER_HOURS if hours is None else hours
    if (
        isinstance(hours, bool)
        or not isinstance(hours, int | float)
        or not math.isfinite(hours)
        or hours < 0
    ):
        raise ValueError(f"hours must be a number of at least 0, not {hours!r}.")
    conf.require_whole_number("batch_size", batch_size)
    now = timezone.now()
    old = jobs.filter(created__lte=now - datetime.timedelta(hours=hours)).filter(
        Q(state__in=FINISHED) | Q(state=State.STOPPING, lease_expires_at__isnull=True)
    )
    # Read from the jobs (not the workflow's finished_at, which a lost process may
    # have left unset): the (workflow, state) index answers it.
    live = jobs.model._default_manager.filter(workflow=OuterRef("workflow"), state__in=UNFINISHED)
    old = old.filter(Q(workflow__isnull=True) | ~Exists(live))
    deleted = 0
    while True:
        ids = list(old.order_by().values_list("pk", flat=True)[:batch_size])
        if not ids:
            keys.prune_rows(jobs.model._default_manager.using(jobs.db))
            return deleted
        # The conditions again: a job retried by hand since the SELECT is kept.
        # Counted as jobs: their dependency rows go with them.
        batch = old.filter(pk__in=ids).delete()[1].get(jobs.model._meta.label, 0)
        deleted += batch
        if progress is not None:
            progress(batch)
