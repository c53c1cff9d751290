"""The heartbeat thread: renews the leases of the jobs its worker holds.

It also marks the running job ``STOPPING`` once a shutdown began, and hands back
prefetched jobs that wait behind a long-running one, so other workers run them.
One heartbeat serves every slot of a threaded worker: one ``HeldJobs`` per slot,
all their leases renewed in one statement.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Sequence

from django.db import DatabaseError

from .. import engine
from .held import HeldJobs
from .periodic import Periodic, interval_for
from .shutdown import Shutdown

logger = logging.getLogger(__name__)

# Prefetched jobs waiting behind a job that has run this long are handed back.
PREFETCH_PATIENCE = 1.0


class Heartbeat(Periodic):
    """Renews the leases of ``held`` (one worker's, or each slot's); marks running jobs STOPPING."""

    def __init__(
        self,
        held: HeldJobs | Sequence[HeldJobs],
        shutdown: Shutdown,
        using: str,
        lease_seconds: float,
    ):
        super().__init__(using, interval_for(lease_seconds), "django_dbq-heartbeat")
        self.holders = [held] if isinstance(held, HeldJobs) else list(held)
        self.shutdown = shutdown
        self.lease_seconds = lease_seconds
        self.marked: set = set()  # (job, claim) pairs marked STOPPING already

    def tick(self) -> None:
        held = [(holder, holder.all()) for holder in self.holders]
        if any(jobs for _, jobs in held):
            self.renew(held)
        if self.shutdown.stopping:
            for holder in self.holders:
                current = holder.current
                if current is None:
                    continue
                # By job and claim: the jobs of one claimed batch share its token, and the
                # async mode runs several of them at once.
                key = (current.pk, current.fence_token)
                if key not in self.marked:
                    engine.mark_stopping(current, self.using)
                    self.marked.add(key)
        for holder in self.holders:
            waiting = holder.take_prefetched(waiting_longer_than=PREFETCH_PATIENCE)
            if waiting:
                self.hand_back(holder, waiting)

    def renew(self, held: list[tuple[HeldJobs, list]]) -> None:
        """Renew every lease held, in one statement."""
        jobs = [job for _, some in held for job in some]
        sent_at = time.monotonic()
        renewed = engine.renew_leases(jobs, self.lease_seconds, self.using)
        logger.debug("Heartbeat: renewed %s job leases", renewed)
        if renewed == len(jobs):
            for holder, some in held:
                holder.confirm(some, sent_at)  # prefetched jobs may start unchecked

    def hand_back(self, holder: HeldJobs, jobs: list) -> None:
        """Release prefetched jobs waiting behind a long job; they never started here."""
        for position, job in enumerate(jobs):
            try:
                if engine.hand_back(job):
                    logger.debug("Handed back prefetched job %s", job.pk)
                else:
                    logger.warning("Prefetched job %s was taken back already", job.pk)
            except DatabaseError:
                holder.give_back(jobs[position:])
                raise
