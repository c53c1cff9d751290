"""What a new job gets before it is inserted: its first step, checked fields, the creation hook.

``Job.save()`` and ``Job.objects.bulk_create()`` prepare every job here, so a job is
refused (``ValueError``, nothing written) the same way whichever way it is created.
"""

from __future__ import annotations

from typing import Any

from . import conf, keys, tracing
from .definitions import get_definition
from .engine import check_workspace

# The range of Job.priority's column (a SMALLINT on every supported database).
PRIORITY_RANGE = (-32768, 32767)
UNIQUE_KEY_MAX_LENGTH = 200


def prepare(job: Any) -> None:
    """Fill in what a new ``job`` needs: first step, workspace, attempts; run its creation hook."""
    definition = get_definition(job.name)
    key = job.unique_key
    if key is not None and (not isinstance(key, str) or not 0 < len(key) <= UNIQUE_KEY_MAX_LENGTH):
        raise ValueError(
            f"unique_key must be a string of 1 to {UNIQUE_KEY_MAX_LENGTH} characters or None."
        )
    check_placement(job)
    keys.check_key(job, definition.concurrency_per_key)
    job.next_task = definition.next_task_after(None)
    job.workspace = check_workspace(job.workspace)
    job.max_attempts = definition.max_attempts
    if job.trace_context is None:
        job.trace_context = tracing.current_trace_context()
    hook = definition.hook("creation_hook")
    if hook is not None:
        hook(job)
        job.workspace = check_workspace(job.workspace)
        check_placement(job)  # as the hook left them
        keys.check_key(job, definition.concurrency_per_key)


def check_placement(job: Any) -> None:
    """Refuse a queue name no worker can serve and a priority the column cannot hold."""
    if not conf.is_queue_name(job.queue_name):
        raise ValueError(
            f"queue_name must be a non-empty string of at most {conf.QUEUE_NAME_MAX_LENGTH} "
            f"characters, not {job.queue_name!r}."
        )
    low, high = PRIORITY_RANGE
    priority = job.priority
    if isinstance(priority, bool) or not isinstance(priority, int) or not low <= priority <= high:
        raise ValueError(f"priority must be a whole number from {low} to {high}, not {priority!r}.")
