"""Claiming runnable jobs, in as few round trips as each database allows.

The statement itself is the database engine's (``django_dbq.backends``): built once
per list of queues, then run by every claim. No worker ever waits on a row another
worker has claimed.

A queue with a concurrency limit (``DBQ_QUEUES``) is claimed apart from the others,
one job at a time, in a transaction that counts its running jobs under a lock on its
row (:mod:`django_dbq.backends.limits`); the queues without a limit keep their one
statement. A rate-limited queue is claimed the same way, and its row also tells when
its next job may start.

Jobs with a concurrency key (:mod:`django_dbq.keys`) are claimed apart too, one at a
time under their key's lock (:mod:`django_dbq.backends.keyed`). Looking for them costs
a query, so a worker that found none looks again only after a short pause, growing
up to its poll interval while it keeps finding none.
"""

from __future__ import annotations

import logging
import time
import uuid
from collections.abc import Mapping, Sequence

from django.db import DatabaseError, connections, transaction
from django.db.models import QuerySet
from django.utils import timezone

from .. import backends, conf, leases
from ..backends import keyed
from ..keys import ConcurrencyKey

logger = logging.getLogger(__name__)

# The first pause before looking for keyed jobs again after a look found none to claim.
KEYED_LOOK_PAUSE = 0.05


class Claimer:
    """Claims runnable jobs among ``jobs`` (the job table on one database) for one worker.

    A claim makes a job ``PROCESSING`` under a new token and a lease, in one
    statement (two on MariaDB/MySQL, in one transaction).

    ``limits``: queue name -> the most of its jobs held by workers at once, counted
    over every worker; ``rates``: queue name -> the fewest seconds between two starts
    of its jobs, over every worker; ``queue_rows`` (the queue table, needed with either)
    holds the row each limited queue's claims lock.
    """

    def __init__(
        self,
        jobs: QuerySet,
        queue_names: Sequence[str],
        worker_id: str,
        lease_seconds: float,
        *,
        limits: Mapping[str, int] | None = None,
        rates: Mapping[str, float] | None = None,
        queue_rows: QuerySet | None = None,
    ):
        self.using = jobs.db
        self.queue_names = list(queue_names)
        self.worker_id = worker_id
        self.lease_seconds = lease_seconds
        connection = connections[self.using]
        self.backend = backends.for_connection(connection)
        model = jobs.model
        limits, rates = limits or {}, rates or {}
        limited = [name for name in self.queue_names if name in limits or name in rates]
        free = [name for name in self.queue_names if name not in limited]
        # The claim of the queues without a limit (None if every queue has one).
        self.plan = self.backend.claim_plan(connection, model, free) if free else None
        # (the queue's LimitPlan, its limit or None, its spacing or None), in the worker's order
        self.limited: list[tuple] = []
        if limited:
            if queue_rows is None:
                raise ValueError("A claimer of limited queues needs queue_rows (their rows).")
            self._make_rows(queue_rows, limited)
            self.limited = [
                (
                    self.backend.limit_plan(connection, model, queue_rows.model, name),
                    limits.get(name),
                    rates.get(name),
                    keyed.plan_for(self.backend, connection, model, ConcurrencyKey, [name]),
                )
                for name in limited
            ]
        # The keyed claims of the queues without a limit, and when to look for them next.
        self.keyed = (
            keyed.plan_for(self.backend, connection, model, ConcurrencyKey, free) if free else None
        )
        # When a worker busy with other jobs looks for keyed ones next (time.monotonic()).
        self.keyed_look_at = time.monotonic() + KEYED_LOOK_PAUSE
        self.keyed_pause = KEYED_LOOK_PAUSE
        self.keyed_pause_max = conf.get("DBQ_POLL_INTERVAL")
        # When the next start of a rate-limited queue that refused one is due (server
        # clock, epoch seconds); None when the last claim was not held back by a rate.
        self.rate_due: float | None = None
        self.turn = 0  # which kind goes first: the limited queues or the others
        self.limited_turn = 0  # which limited queue goes first
        self._token_field = model._meta.get_field("lease_token")
        self._time_field = model._meta.get_field("modified")

    def _make_rows(self, queue_rows: QuerySet, names: list[str]) -> None:
        """Make the rows the limited claims lock, ahead of the first claim.

        Only to spare the claims the work: a claim makes a missing row itself, under
        the queue's lock. Workers starting together at a stricter isolation level than
        READ COMMITTED may collide here, which is harmless.
        """
        try:
            with transaction.atomic(using=self.using):
                rows = [queue_rows.model(pk=name) for name in names]
                queue_rows.bulk_create(rows, ignore_conflicts=True)
        except DatabaseError as error:
            logger.info("Could not make the rows of queues %s yet (%s)", ", ".join(names), error)

    def claim(self, limit: int = 1) -> list:
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
        # Keyed jobs are looked for first when a look is due, and whenever the others
        # gave nothing: never at the cost of a round trip for a claim that got some.
        keyed_first = time.monotonic() >= self.keyed_look_at
        jobs = self._claim_keyed(connection, claim) if keyed_first else []
        if len(jobs) < limit:
            if self.limited:
                jobs += self._claim_with_limits(connection, claim, limit - len(jobs))
            elif self.plan is not None:
                jobs += self.backend.claim(connection, self.plan, claim, limit - len(jobs))
        if not jobs and not keyed_first:
            jobs = self._claim_keyed(connection, claim)
        for job in jobs:
            job.claim_token = token
        jobs.sort(key=lambda job: (-job.priority, job.created))
        return jobs

    def _claim_with_limits(self, connection, claim: backends.Claim, limit: int) -> list:
        """At most one job of the limited queues, the rest from the others.

        One job at most: a job claimed ahead would hold one of its queue's slots while
        it waited here. The limited queues and the others take turns at going first,
        so neither kind keeps the other waiting when claims are of one job.
        """
        self.turn += 1
        limited_first = self.plan is None or self.turn % 2 == 1
        jobs = [] if limited_first else self.backend.claim(connection, self.plan, claim, limit)
        if len(jobs) < limit:
            jobs += self._claim_one_limited(connection, claim)
        if limited_first and self.plan is not None and len(jobs) < limit:
            jobs += self.backend.claim(connection, self.plan, claim, limit - len(jobs))
        return jobs

    def _claim_one_limited(self, connection, claim: backends.Claim) -> list:
        """One job of the first limited queue, in turn, that has one to give."""
        count = len(self.limited)
        self.limited_turn += 1
        self.rate_due = None
        for offset in range(count):
            plan, concurrency, spacing, keyed = self.limited[(self.limited_turn + offset) % count]
            # The claim reads the server's clock under the queue's lock: every worker
            # spaces the starts by that one clock, never by its host's.
            gate = None if spacing is None else backends.RateGate(spacing)

            def take(room: int, plan=plan, keyed=keyed) -> list:
                jobs = self.backend.claim(connection, plan.claim, claim, room)
                return jobs or self._claim_keyed(connection, claim, keyed, one_key=True)

            jobs = self.backend.claim_limited(connection, plan, claim, 1, concurrency, gate, take)
            if jobs:
                self.rate_due = None
                return jobs
            if gate is not None and gate.due is not None:
                self.rate_due = gate.due if self.rate_due is None else min(self.rate_due, gate.due)
        return []

    def _claim_keyed(self, connection, claim, plan=None, *, one_key: bool = False) -> list:
        """One keyed job of the queues without a limit (or of ``plan``'s).

        A look that found one makes the next claim look again; one that found none
        waits a pause, which doubles (up to the poll interval) while looks find none.
        """
        plan = plan or self.keyed
        if plan is None:
            return []
        now = time.monotonic()
        jobs = keyed.claim_one(self.backend, connection, plan, claim, one_key=one_key)
        if jobs:
            self.keyed_look_at, self.keyed_pause = now, KEYED_LOOK_PAUSE
        else:
            self.keyed_look_at = now + self.keyed_pause
            self.keyed_pause = min(
                self.keyed_pause * 2, max(self.keyed_pause_max, KEYED_LOOK_PAUSE)
            )
        return jobs

    def rate_wait(self) -> float | None:
        """Seconds until a queue that a rate held back in the last claim may start a job."""
        if self.rate_due is None:
            return None
        return max(0.0, self.rate_due - leases.server_epoch(self.using))
