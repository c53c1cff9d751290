"""Taking jobs back from lost workers once their lease has lapsed."""

from __future__ import annotations

import logging
import uuid
from collections.abc import Callable, Collection

from django.db import connections
from django.db.models import Q
from django.utils import timezone

from . import conf, leases, signals
from .definitions import get_definition
from .errors import error_record, error_values
from .execution import RELEASED, finished, run_failure_hook, send
from .models import Job, JobQuerySet

logger = logging.getLogger(__name__)


def rescue_lapsed_jobs(
    using: str = "default",
    limit: int = 100,
    keep: Collection[uuid.UUID] | Callable[[], Collection[uuid.UUID]] = (),
) -> int:
    """Return lapsed jobs to ``READY`` at the step they were on, or fail those lost too often.

    The workspace stays as the last checkpoint saved it. Each update is fenced on the
    token seen, so two workers rescuing at once rescue a job once. Claims whose token
    is in ``keep`` are left alone: the calling worker holds them and is alive, even if
    its heartbeat is late. A callable ``keep`` is read just before the query, after
    the (possibly slow) connection and clock set-up, so that a claim the worker made
    meanwhile is kept too. Returns the count.
    """
    now = timezone.now()
    is_lapsed = Q(lease_expires_at__lt=leases.now(using)) | Q(lease_expires_at__isnull=True)
    connections[using].ensure_connection()
    held = keep() if callable(keep) else keep
    lapsed = (
        Job.objects.using(using)
        .filter(state__in=JobQuerySet.ACTIVE)
        .filter(is_lapsed)
        .exclude(lease_token__in=list(held))
        .order_by()[:limit]
    )
    rescued = 0
    for job in lapsed:
        message = f"worker {job.worker_id or '(unknown)'} was lost while running {job.next_task}"
        values = error_values(job, error_record(job, job.next_task, None, message))
        limit_attempts = max(job.max_attempts, conf.get("DBQ_RESCUE_MAX_ATTEMPTS"))
        gives_up = job.attempts >= limit_attempts
        values.update(finished("FAILED") if gives_up else RELEASED)
        # Still lapsed, still the claim seen: a heartbeat that landed meanwhile keeps the job.
        claim = Job.objects.using(using).filter(
            is_lapsed, pk=job.pk, lease_token=job.lease_token, state__in=JobQuerySet.ACTIVE
        )
        if not claim.update(modified=now, **values):
            continue  # its worker came back, or another worker rescued it first
        rescued += 1
        job.modified = now  # the failure hook's workspace is saved fenced on this stamp
        for name, value in values.items():
            setattr(job, name, value)
        logger.warning("Rescued job %s (%s): %s", job.pk, job.name, message)
        send(signals.job_rescued, job=job)
        if gives_up:
            logger.error("Job %s failed: lost %s times", job.pk, job.attempts)
            send(signals.job_failed, job=job, exception=None)
            try:
                definition = get_definition(job.name)
            except Exception:
                definition = None
            run_failure_hook(job, definition, None)
    return rescued
