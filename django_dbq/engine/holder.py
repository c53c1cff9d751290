"""The writes of the worker holding a job's claim, each fenced on the claim's token.

A worker that lost its claim (paused past its lease, then rescued elsewhere)
changes nothing: every write here returns False (or raises :class:`JobLost`) then.
The outcomes of a step (checkpoint, completion, release, retry, failure,
cancellation) take the worker's ``persist``.
"""

from __future__ import annotations

import copy
import datetime
import logging
from collections.abc import Callable
from typing import Any

from django.db import transaction
from django.utils import timezone

from .. import leases, signals
from ..definitions import JobDefinition
from ..errors import storable_text
from ..exceptions import InvalidWorkspace, JobLost
from ..states import ACTIVE, FINISHED, State
from . import dependencies
from .rows import RELEASED, Persist, check_workspace, fenced_update, finished, jobs_of, once

logger = logging.getLogger(__name__)


def save_workspace(job: Any) -> None:
    """A task's ``job.save()``: the workspace alone; :class:`JobLost` once the claim is gone."""
    if not fenced_update(job, workspace=check_workspace(job.workspace)):
        raise JobLost(f"Job {job.pk} is no longer held by this worker; nothing was saved.")


def renew_lease(job: Any, lease_seconds: float, using: str) -> bool:
    """Move the lease of one held job forward; False when it is held here no more."""
    return fenced_update(job, lease_expires_at=leases.deadline(lease_seconds, using))


def renew_leases(jobs: list[Any], lease_seconds: float, using: str) -> int:
    """The heartbeat: move the leases of the held ``jobs`` forward; the number renewed."""
    expires = leases.deadline(lease_seconds, using)
    tokens = {job.fence_token for job in jobs if job.fence_token is not None}
    # By primary key (always indexed) and token (so a rescued job is left alone).
    held = jobs_of(jobs[0], using).filter(pk__in=[job.pk for job in jobs], lease_token__in=tokens)
    return held.filter(state__in=ACTIVE).update(lease_expires_at=expires)


def mark_stopping(job: Any, using: str) -> int:
    """Mark a running job ``STOPPING`` (its worker is shutting down) while its claim is current."""
    if job.fence_token is None:
        return 0  # released or finished here already; a NULL token must never match
    held = jobs_of(job, using).filter(pk=job.pk, lease_token=job.fence_token)
    return held.exclude(state__in=(*FINISHED, State.STOPPING)).update(
        state=State.STOPPING, modified=timezone.now()
    )


def checkpoint(
    job: Any,
    following: str,
    *,
    lease_seconds: float | None = None,
    persist: Persist = once,
    also: Callable[[], list] | None = None,
    more: dict[str, Any] | None = None,
) -> bool:
    """Save a finished step: the workspace and the step that follows (``""``: ``COMPLETE``).

    The same statement checks the cancel flag (no extra round trip per step): False
    when someone asked to cancel the job, or its claim is gone. Moves the lease on
    (``lease_seconds``), so a job that makes progress keeps it even while the
    heartbeat is starved. Sends ``step_finished``, then ``job_completed`` at the end.

    ``also`` makes more writes in the checkpoint's transaction (the jobs a step added to
    its workflow) and returns the signals they owe: they land only with the checkpoint.
    ``more``: other columns to write with it (a progress report that waited for it).
    """
    step = job.next_task
    values = {"workspace": job.workspace, "next_task": following, **(more or {})}
    if not following:
        # A rescued or retried job that completes has no current error (``errors`` keeps it).
        values.update(finished(State.COMPLETE), error="")
    using = job._state.db or "default"

    def write() -> bool:
        # The deadline is taken at each try: a retried write must not move the lease back.
        lease = {}
        if following and lease_seconds:
            lease["lease_expires_at"] = leases.deadline(lease_seconds, using)
        if also is None:
            return fenced_update(job, unless_cancelled=True, **values, **lease)
        # What the transaction's writes signal (the added jobs' job_created...) is sent
        # once it has committed, and never for a try rolled back.
        with signals.held() as kept, transaction.atomic(using=using):
            notices[:] = also()
            if fenced_update(job, unless_cancelled=True, **values, **lease):
                committed[:] = kept
                return True
            transaction.set_rollback(True, using=using)
            return False

    notices: list = []
    committed: list = []
    if not persist(write):
        return False
    signals.release(committed)
    dependencies.send(notices)
    signals.send(signals.step_finished, job, task=step)
    if not following:
        signals.send(signals.job_completed, job)
    return True


def release(job: Any, *, persist: Persist = once, **values: Any) -> bool:
    """Hand ``job`` back ``READY`` at its next step, with ``values`` (attempts, the error)."""
    return persist(lambda: fenced_update(job, **RELEASED, **values))


def hand_back(job: Any, *, persist: Persist = once) -> bool:
    """Release ``job`` with its attempt given back: a stop or a handing-back is no failure."""
    return release(job, persist=persist, attempts=max(job.attempts - 1, 0))


def retry_later(job: Any, delay: float, *, persist: Persist = once, **values: Any) -> bool:
    """Hand ``job`` back to run its step again in ``delay`` seconds; sends ``job_retried``."""
    run_after = timezone.now() + datetime.timedelta(seconds=delay)
    if not persist(lambda: fenced_update(job, **RELEASED, run_after=run_after, **values)):
        return False
    signals.send(signals.job_retried, job, delay=delay, manual=False)
    return True


def cancel_running(job: Any, *, persist: Persist = once, **values: Any) -> bool:
    """End a held job ``CANCELLED``, as someone asked; sends ``job_cancelled``."""
    if not persist(lambda: fenced_update(job, **finished(State.CANCELLED), **values)):
        return False
    signals.send(signals.job_cancelled, job)
    return True


def fail(
    job: Any,
    exception: BaseException | None,
    definition: JobDefinition | None,
    *,
    persist: Persist = once,
    **values: Any,
) -> bool:
    """End a held job ``FAILED``; sends ``job_failed``, then runs the failure hook."""
    if not persist(lambda: fenced_update(job, **finished(State.FAILED), **values)):
        return False
    signals.send(signals.job_failed, job, exception=exception)
    run_failure_hook(job, definition, exception)
    return True


def run_failure_hook(
    job: Any, definition: JobDefinition | None, error: BaseException | None
) -> None:
    """Call the definition's failure hook; if it raises, note that on the row and go on.

    What the hook writes to the workspace is saved with the failed job, as in
    django-db-queue 3.x.
    """
    before = copy.deepcopy(job.workspace)
    try:
        hook = definition.hook("failure_hook") if definition else None
        if hook:
            hook(job, error)
    except BaseException as hook_error:
        logger.exception("Failure hook of job %s raised", job.pk)
        note = f"\n\nThe failure hook raised {type(hook_error).__name__}: {hook_error}"
        failed = jobs_of(job).filter(pk=job.pk, state=State.FAILED)
        failed.update(error=storable_text(job.error + note))
    save_hook_workspace(job, before)


def save_hook_workspace(job: Any, before: Any) -> None:
    """Save what a hook run after the job's outcome changed in its workspace.

    The outcome write left no claim to fence on, so this one is fenced on that write's
    own ``modified`` stamp: it lands only while the row is exactly as the outcome left
    it. A retry claimed (or run, or retried by hand) meanwhile is never overwritten.
    """
    if job.workspace == before:
        return
    try:
        workspace = check_workspace(job.workspace)
    except InvalidWorkspace as error:
        logger.error("Job %s: a hook left a workspace that cannot be saved: %s", job.pk, error)
        return
    jobs_of(job).filter(pk=job.pk, state=job.state, modified=job.modified).update(
        workspace=workspace
    )
