"""The worker's log lines about each step, as django-db-queue 3.x wrote them.

3.x logged each step under its worker command's name, in these formats: logging
configurations and log searches written for it keep working.
"""

from __future__ import annotations

import logging
from typing import Any

from ..states import State

job_log = logging.getLogger("django_dbq.management.commands.worker")


def log_processing(job: Any) -> None:
    job_log.info(
        'Processing job: name="%s" queue="%s" id=%s state=%s next_task=%s',
        job.name,
        job.queue_name,
        job.pk,
        job.state,
        job.next_task,
    )


def log_updated(job: Any, following: str | None) -> None:
    """The line after a step: the state it left the job in and the step that follows."""
    if following is None:
        state, following = job.state, job.next_task  # failed: retried (READY) or FAILED
    else:
        state = State.READY if following else State.COMPLETE
    job_log.info(
        'Updating job: name="%s" id=%s state=%s next_task=%s',
        job.name,
        job.pk,
        state,
        following or "none",
    )
