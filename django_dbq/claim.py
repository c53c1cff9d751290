"""Claiming runnable jobs, in as few round trips as each database allows.

The statement itself is the database engine's (``django_dbq.backends``): built once
per list of queues, then run by every claim. No worker ever waits on a row another
worker has claimed.
"""

from __future__ import annotations

import uuid
from collections.abc import Sequence

from django.db import connections
from django.utils import timezone

from . import backends, leases
from .models import Job


class Claimer:
    """Claims up to ``limit`` runnable jobs of ``queue_names`` for one worker."""

    def __init__(
        self, using: str, queue_names: Sequence[str], worker_id: str, lease_seconds: float
    ):
        self.using = using
        self.queue_names = list(queue_names)
        self.worker_id = worker_id
        self.lease_seconds = lease_seconds
        connection = connections[using]
        self.backend = backends.for_connection(connection)
        self.plan = self.backend.claim_plan(connection, Job, self.queue_names)
        self._token_field = Job._meta.get_field("lease_token")
        self._time_field = Job._meta.get_field("modified")

    def claim(self, limit: int = 1) -> list[Job]:
        """Claim and return up to ``limit`` jobs, highest priority then oldest first.

        Each claimed instance carries the claim's token (``claim_token``), which fences
        every write made through it.
        """
        connection = connections[self.using]
        now = timezone.now()
        token = uuid.uuid4()
        expires = leases.deadline(self.lease_seconds, self.using)
        claim = backends.Claim(
            token=token,
            expires=expires,
            now=now,
            worker_id=self.worker_id,
            prepared_token=self._token_field.get_db_prep_value(token, connection),
            prepared_expires=self._time_field.get_db_prep_value(expires, connection),
            prepared_now=self._time_field.get_db_prep_value(now, connection),
        )
        jobs = self.backend.claim(connection, self.plan, claim, limit)
        for job in jobs:
            job.claim_token = token
        jobs.sort(key=lambda job: (-job.priority, job.created))
        return jobs
