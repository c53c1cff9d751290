"""A limited queue's claim (``DBQ_QUEUES``): lock the queue's row, count, claim the room left.

Every claim of a limited queue runs in one transaction that first locks the queue's
row in the queue table (the one that records pauses), then counts the queue's jobs
held by workers (``PROCESSING`` or ``STOPPING``: running, claimed ahead, or lapsed and
not yet rescued), then claims at most ``limit - running``. The claims of that queue
queue up on the row for a moment, so no two of them see the same free slot; the
statements that end, release or rescue a job only lower the count and need no lock.
Queues without a limit never touch the row: their claim is the one statement it
always was.

A rate-limited queue (``"rate": "N/m"``) keeps on the same row, under the same lock,
when its last job started (``last_start_at``, on the database server's clock): a
claim less than one spacing (period/N) after it takes nothing; a claim that starts a
job sets it to the claim's own time. Starts are thus at least period/N apart, and no
span of one period holds more than N, on whichever host the workers run.
"""

from __future__ import annotations

import dataclasses
import time

from django.db import models
from django.db.models.constants import OnConflict

from ..states import ACTIVE
from .claims import ClaimPlan


@dataclasses.dataclass(frozen=True)
class LimitPlan:
    """The statements of one limited queue's claim, built once and reused."""

    claim: ClaimPlan  # the queue's own claim statement
    lock: str  # locks the queue's row until the transaction ends (parameter: the name)
    create: str  # makes the queue's row if it is missing
    running: str  # counts the queue's jobs held by workers
    read_last: str  # when the queue's last job started (rate limits), and the server's time
    write_last: str  # sets it (parameters: the time, the name)

    @property
    def queue_name(self) -> str:
        return self.claim.queue_names[0]


def build_limit_plan(
    connection,
    claim: ClaimPlan,
    queue_model: type[models.Model],
    lock_sql: str,
    clock_sql: str | None = None,
) -> LimitPlan:
    """``lock_sql``: the engine's way to lock a row, with ``{table}`` and ``{name}`` to fill;
    ``clock_sql``: the engine's query of the server's clock (None: none, the host's is used).
    """
    quote = connection.ops.quote_name
    table, name = quote(queue_model._meta.db_table), quote(queue_model._meta.pk.column)
    create = insert_ignore_sql(connection, queue_model)
    job_meta = claim.model._meta
    jobs, queue = quote(job_meta.db_table), quote(job_meta.get_field("queue_name").column)
    states = ", ".join(f"'{state.value}'" for state in ACTIVE)
    running = f"SELECT COUNT(*) FROM {jobs} WHERE {queue} = %s AND state IN ({states})"
    last_start = quote(queue_model._meta.get_field("last_start_at").column)
    # The server's clock is read by the same statement, after the lock was taken: what
    # the claim compares is the server's time of the claim, not a host's estimate of it.
    clock = f", {clock_sql.removeprefix('SELECT ')}" if clock_sql else ""
    read_last = f"SELECT {last_start}{clock} FROM {table} WHERE {name} = %s"
    write_last = f"UPDATE {table} SET {last_start} = %s WHERE {name} = %s"
    lock = lock_sql.format(table=table, name=name)
    return LimitPlan(claim, lock, create, running, read_last, write_last)


def insert_ignore_sql(connection, model: type[models.Model]) -> str:
    """Inserts a row of ``model`` by its primary key alone, unless it is there already."""
    ops, meta = connection.ops, model._meta
    table, name = ops.quote_name(meta.db_table), ops.quote_name(meta.pk.column)
    ignore = OnConflict.IGNORE
    suffix = ops.on_conflict_suffix_sql([meta.pk], ignore, None, None)
    insert = ops.insert_statement(on_conflict=ignore)
    return f"{insert} {table} ({name}) VALUES (%s) {suffix}".rstrip()


@dataclasses.dataclass
class RateGate:
    """A rate-limited claim's ``spacing``, and what the claim found under the lock."""

    spacing: float  # the fewest seconds between two starts of the queue
    clock: float = 0.0  # the claim's time on the database server's clock (epoch seconds)
    due: float | None = None  # set when the claim took nothing: when the next start may be

    def refuses(self, row: tuple) -> bool:
        """Whether a start now would come too soon, from the row :attr:`LimitPlan.read_last`
        read; if so, remember when it may come."""
        last_start_at = row[0]
        self.clock = float(row[1]) if len(row) > 1 else time.time()
        if last_start_at is not None and self.clock < last_start_at + self.spacing:
            self.due = last_start_at + self.spacing
            return True
        return False
