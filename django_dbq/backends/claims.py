"""The parts of a claim statement every database engine shares: what it writes, in what order.

A claim makes runnable jobs ``PROCESSING`` under a fresh token and lease; each engine
writes its own statement (:meth:`~.base.Backend.build_claim_plan`) from these parts.
"""

from __future__ import annotations

import dataclasses
import datetime
import uuid
from typing import Any

from django.db import models

from ..states import State

# What a claim writes, written once: every backend's claim statement sets exactly
# these columns, in this order (see ``Claim.assignment_params`` and ``Claim.apply``).
CLAIM_ASSIGNMENTS = (
    "state = 'PROCESSING', lease_token = %s, lease_expires_at = %s, worker_id = %s, "
    "started_at = %s, modified = %s, attempts = attempts + 1"
)
# The claim order: each queue is read in index order (the claim indexes lead with the
# queue), and several queues are merged by priority, never by sorting every runnable row.
CLAIM_ORDER = "ORDER BY priority DESC, created"
RUNNABLE = "state IN ('NEW', 'READY')"
# A job whose ``run_after`` has come (the parameter is the claim's ``now``).
DUE = "(run_after IS NULL OR run_after <= %s)"


def runnable_in(queue: str) -> str:
    """The WHERE condition of runnable jobs without a concurrency key of the queue named
    by the SQL ``queue`` (keyed jobs are claimed apart: :mod:`.keyed`)."""
    return f"{RUNNABLE} AND concurrency_key IS NULL AND queue_name = {queue} AND {DUE}"


@dataclasses.dataclass(slots=True)
class Claim:
    """The values one claim writes: in Python, and prepared as the database takes them."""

    token: uuid.UUID
    expires: datetime.datetime
    now: datetime.datetime
    worker_id: str
    prepared_token: Any
    prepared_expires: Any
    prepared_now: Any

    def assignment_params(self) -> list:
        """The parameters of :data:`CLAIM_ASSIGNMENTS`, in its order."""
        return [
            self.prepared_token,
            self.prepared_expires,
            self.worker_id,
            self.prepared_now,
            self.prepared_now,
        ]

    def apply(self, job: models.Model) -> None:
        """Set on ``job`` what :data:`CLAIM_ASSIGNMENTS` wrote on its row."""
        job.state, job.lease_token, job.lease_expires_at = (
            State.PROCESSING,
            self.token,
            self.expires,
        )
        job.worker_id, job.started_at, job.modified = self.worker_id, self.now, self.now
        job.attempts += 1


@dataclasses.dataclass(frozen=True)
class ClaimPlan:
    """A claim statement for one model and one list of queues, built once and reused."""

    model: type[models.Model]
    queue_names: tuple[str, ...]
    sql: str
    # The model's concrete fields, in the order of the columns the statement reads.
    fields: tuple[models.Field, ...]


def quoted_table_and_columns(connection, model: type[models.Model]) -> tuple[str, str]:
    """The model's table and its concrete columns, quoted for ``connection``."""
    quote = connection.ops.quote_name
    columns = ", ".join(quote(field.column) for field in model._meta.concrete_fields)
    return quote(model._meta.db_table), columns
