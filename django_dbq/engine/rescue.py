"""Taking jobs back from lost workers: once their lease has lapsed, or at once when known dead."""

from __future__ import annotations

import contextlib
import logging
import uuid
from collections.abc import Callable, Collection
from typing import Any

from django.db import connections, transaction
from django.db.models import Q, QuerySet
from django.utils import timezone

from .. import conf, leases, signals
from ..definitions import get_definition
from ..errors import error_record, error_values
from ..states import ACTIVE, State
from . import dependencies
from .holder import run_failure_hook
from .rows import RELEASED, finished

logger = logging.getLogger(__name__)


def rescue_lapsed(
    jobs: QuerySet,
    *,
    limit: int = 100,
    held_by_caller: Collection[uuid.UUID] | Callable[[], Collection[uuid.UUID]] = (),
) -> int:
    """Return lapsed jobs among ``jobs`` to ``READY`` at their step; fail those lost too often.

    The workspace stays as the last checkpoint saved it. Each update is fenced on the
    token seen, so two workers rescuing at once rescue a job once. Claims whose token
    is in ``held_by_caller`` are left alone: the calling worker holds them and is alive, even if
    its heartbeat is late. A callable ``held_by_caller`` is read just before the query, after
    the (possibly slow) connection and clock set-up, so that a claim the worker made
    meanwhile is kept too. Sends ``job_rescued`` (and ``job_failed``); returns the count.
    """
    using = jobs.db
    now = timezone.now()
    is_lapsed = Q(lease_expires_at__lt=leases.now(using)) | Q(lease_expires_at__isnull=True)
    connections[using].ensure_connection()
    held = held_by_caller() if callable(held_by_caller) else held_by_caller
    lapsed = jobs.filter(state__in=ACTIVE).filter(is_lapsed).exclude(lease_token__in=list(held))
    rescued = 0
    for job in lapsed.order_by()[:limit]:
        if _rescue(jobs, job, is_lapsed, now):
            rescued += 1
    return rescued


def rescue_worker(jobs: QuerySet, worker_id: str) -> int:
    """Return the jobs among ``jobs`` that worker ``worker_id`` holds, whatever their leases say.

    For a caller that knows the worker is dead (a supervisor whose child exited):
    its jobs need not wait for their leases to lapse. The outcome is a lapsed
    rescue's (``READY`` at the step, or ``FAILED`` when lost too often; the same
    error record and signals). Each update is fenced on the worker and the token
    seen, so a job that someone else claimed meanwhile is left alone. Returns the count.
    """
    if not worker_id:  # released rows name no worker: never match them by accident
        raise ValueError("rescue_worker needs the worker's id.")
    now = timezone.now()
    held_by_it = Q(worker_id=worker_id)
    rescued = 0
    # A worker holds at most one claim batch: one query finds them all.
    for job in list(jobs.filter(held_by_it, state__in=ACTIVE).order_by()):
        if _rescue(jobs, job, held_by_it, now):
            rescued += 1
    return rescued


def _rescue(jobs: QuerySet, job: Any, fence: Q, now: Any) -> bool:
    """Take ``job`` back if its row still matches ``fence`` and the claim seen."""
    message = f"worker {job.worker_id or '(unknown)'} was lost while running {job.next_task}"
    values = error_values(job, error_record(job, job.next_task, None, message))
    gives_up = job.attempts >= max(job.max_attempts, conf.get("DBQ_RESCUE_MAX_ATTEMPTS"))
    values.update(finished(State.FAILED) if gives_up else RELEASED)
    # Still the claim seen (and still lapsed, or still the dead worker's): a heartbeat
    # that landed meanwhile keeps the job, and so does a claim someone made since.
    claim = jobs.filter(fence, pk=job.pk, lease_token=job.lease_token, state__in=ACTIVE)
    follow = gives_up and dependencies.affects_others(job)
    with transaction.atomic(using=jobs.db) if follow else contextlib.nullcontext():
        if not claim.update(modified=now, **values):
            return False  # its worker came back, or another worker rescued it first
        notices = dependencies.job_ended(job, State.FAILED.value, jobs.db) if follow else []
    dependencies.send(notices)
    job.modified = now  # the failure hook's workspace is saved fenced on this stamp
    for name, value in values.items():
        setattr(job, name, value)
    logger.warning("Rescued job %s (%s): %s", job.pk, job.name, message)
    signals.send(signals.job_rescued, job)
    if gives_up:
        logger.error("Job %s failed: lost %s times", job.pk, job.attempts)
        signals.send(signals.job_failed, job, exception=None)
        try:
            definition = get_definition(job.name)
        except Exception:
            definition = None
        run_failure_hook(job, definition, None)
    return True
