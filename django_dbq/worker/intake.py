"""Claiming ahead: jobs are claimed in batches, held, and handed out one at a time.

Only queues that are not paused are claimed from (:mod:`.pauses`), queues with a
concurrency limit (``DBQ_QUEUES``) only while they have room, and rate-limited ones
only when their next start is due (``engine.Claimer``).
Each job handed out is checked first: that its claim is still this worker's (after a
pause of the process, a lapsed lease may have been rescued elsewhere), whether someone
asked to cancel it while it waited, and that its queue was not paused since it was
claimed (then it is handed back unstarted).
"""

from __future__ import annotations

import logging
import time

from django.db import DatabaseError, connections

from .. import conf, engine
from ..exceptions import JobLost
from ..models import Job
from ..queues import Queue
from .held import HeldJobs
from .outages import PersistentWrites
from .outcomes import Outcomes
from .pauses import PausedQueues

logger = logging.getLogger(__name__)

# A prefetched job is started only after its cancel flag was read this recently:
# a cancel made while it waited behind other jobs stops it before its first step.
CANCEL_CHECK_INTERVAL = 0.02


class Intake:
    """Claims jobs of ``queue_names`` into ``held``; hands out the next one, checked."""

    def __init__(
        self,
        jobs,
        queue_names: list[str],
        worker_id: str,
        held: HeldJobs,
        persist: PersistentWrites,
        *,
        poll_interval: float | None = None,
    ) -> None:
        self.jobs = jobs  # the job table on the worker's database
        self.queue_names = queue_names
        self.worker_id = worker_id
        self.held = held
        self.persist = persist
        self.lease_seconds = persist.lease_seconds
        self.cancel_flags_read_at = 0.0
        self._cancel_sql: dict[int, str] = {}
        interval = conf.get("DBQ_POLL_INTERVAL") if poll_interval is None else poll_interval
        self.pauses = PausedQueues(jobs.db, queue_names, interval)
        self.found_nothing = False  # the last claim came back empty: the worker waited since
        self._claimers: dict[tuple[str, ...], engine.Claimer] = {}
        self._last_claimer: engine.Claimer | None = None

    @property
    def claimer(self) -> engine.Claimer:
        """The claimer of all this worker's queues, paused or not."""
        return self.claimer_for(self.queue_names)

    def claimer_for(self, queue_names: list[str]) -> engine.Claimer:
        key = tuple(queue_names)
        if key not in self._claimers:
            self._claimers[key] = engine.Claimer(
                self.jobs,
                key,
                self.worker_id,
                self.lease_seconds,
                limits=conf.queue_limits(),
                rates=conf.queue_rates(),
                queue_rows=Queue.objects.using(self.jobs.db),
            )
        return self._claimers[key]

    def claim(self, limit: int) -> list[Job]:
        """Claim up to ``limit`` jobs of the queues not paused and hold them; the jobs claimed."""
        queues = self.pauses.serving(woken=self.found_nothing)
        if not queues:  # every queue of this worker is paused: it idles
            self.found_nothing = True
            return []
        claimed_at = time.monotonic()
        self._last_claimer = claimer = self.claimer_for(queues)
        jobs = claimer.claim(limit)
        self.found_nothing = not jobs
        self.cancel_flags_read_at = claimed_at  # the claim read them
        if jobs:
            self.held.add(jobs, claimed_at)
        return jobs

    def rate_wait(self) -> float | None:
        """Seconds until a queue a rate held back in the last claim may start a job, if any."""
        return self._last_claimer.rate_wait() if self._last_claimer is not None else None

    def idle_wait(self, poll_interval: float) -> float:
        """How long to wait after a claim that found nothing: one poll interval, or less
        when a rate held a queue back and its next start comes sooner (never 0: no spin)."""
        wait = self.rate_wait()
        return poll_interval if wait is None else min(poll_interval, max(wait, 0.005))

    def next(self) -> Job | None:
        """The next held job, now the running one; None if none is left, lost or paused."""
        if self.held.prefetched and self.pauses.stale():
            self.pauses.read()  # at most once per poll interval, before anything is taken
        job = self.held.start_next()
        if job is None:
            return None
        if self.pauses.is_paused(job.queue_name):
            self.held.finish_current()
            logger.info("Job %s: its queue was paused; handing it back unstarted", job.pk)
            self.hand_back(job)
            return None
        if not self.still_ours(job):
            self.held.finish_current()
            return None
        try:
            self.read_cancel_requests(job)
        except BaseException:
            self.held.finish_current()
            self.held.give_back([job])  # first in line again, checked again
            raise
        return job

    def still_ours(self, job: Job) -> bool:
        """Make sure the lease of a prefetched job did not lapse while it waited.

        Needed only when neither the claim nor a heartbeat confirmed the lease
        recently (this process was paused or starved): then one fenced write
        renews it, or tells that the job was rescued and must not run here.
        """
        if time.monotonic() - self.held.confirmed_at(job) < self.lease_seconds / 2:
            return True
        using = self.jobs.db
        try:
            if self.persist(lambda: engine.renew_lease(job, self.lease_seconds, using)):
                return True
        except DatabaseError as error:
            logger.warning("Could not check the lease of job %s: %s", job.pk, error)
            return False
        logger.warning("Lost the claim on job %s before it started; skipping it", job.pk)
        return False

    def read_cancel_requests(self, job: Job) -> None:
        """Before starting ``job``, read the cancel flags of the jobs waiting here, if stale."""
        now = time.monotonic()
        if now - self.cancel_flags_read_at < CANCEL_CHECK_INTERVAL:
            return
        waiting = {held.pk: held for held in [job, *self.held.prefetched]}
        for pk in self._cancel_requested_among(list(waiting)):
            waiting[pk].cancel_requested = True
        self.cancel_flags_read_at = now

    def _cancel_requested_among(self, pks: list) -> list:
        """The primary keys among ``pks`` whose jobs someone asked to cancel.

        The statement is built once per number of keys (a queryset is compiled anew
        at each call, which cost a threads-mode worker about a third of its CPU per job).
        """
        connection = connections[self.jobs.db]
        meta = self.jobs.model._meta
        sql = self._cancel_sql.get(len(pks))
        if sql is None:
            quote = connection.ops.quote_name
            sql = (
                f"SELECT {quote(meta.pk.column)} FROM {quote(meta.db_table)} "
                f"WHERE {quote(meta.get_field('cancel_requested').column)} = %s "
                f"AND {quote(meta.pk.column)} IN ({', '.join(['%s'] * len(pks))})"
            )
            self._cancel_sql[len(pks)] = sql
        params = [True, *(meta.pk.get_db_prep_value(pk, connection) for pk in pks)]
        with connection.cursor() as cursor:
            cursor.execute(sql, params)
            return [meta.pk.to_python(row[0]) for row in cursor.fetchall()]

    def release_unstarted(self) -> None:
        """Hand back claimed jobs that never started, so a stop strands nothing."""
        jobs = self.held.take_prefetched()
        if jobs:
            logger.info("Handing back %s claimed job(s) that had not started", len(jobs))
        for job in jobs:
            self.hand_back(job)

    def hand_back(self, job: Job) -> None:
        """Release ``job``, which never started here (``READY``, its attempt given back)."""
        try:
            Outcomes(job, self.persist).release()
        except (JobLost, DatabaseError):
            logger.warning("Could not release job %s; it will be rescued", job.pk)
