"""What every database engine does for the queue: the interface, and the parts they share.

A backend is chosen once per database alias (see :func:`django_dbq.backends.for_connection`)
and is the only place that knows which database it talks to. Callers hand it the
model and the values; it knows nothing of workers, commands or the Tasks backend.

The interface, in the order a job meets it:

- **insert** many rows at once (``can_insert_directly``, ``insert_rows``);
- **claim** runnable rows for a worker (``claim_plan`` built once, then ``claim``);
- **write** the worker's own bookkeeping (``execute_update``);
- **read the server's clock** the leases run on (``server_clock_sql``);
- **wait for work** (``waiter``) and **set up** a worker's connection
  (``prepare_worker_connection``).
"""

from __future__ import annotations

import abc
import dataclasses
import datetime
import threading
import uuid
from collections.abc import Sequence
from typing import Any, ClassVar

from django.db import models, transaction

from .rows import instances_from_rows, prepared_rows

# What a claim writes, written once: every backend's claim statement sets exactly
# these columns, in this order (see ``Claim.assignment_params`` and ``Claim.apply``).
CLAIM_ASSIGNMENTS = (
    "state = 'PROCESSING', lease_token = %s, lease_expires_at = %s, worker_id = %s, "
    "started_at = %s, modified = %s, attempts = attempts + 1"
)
# The claim order: each queue is read in index order (the claim indexes lead with the
# queue), and several queues are merged by priority, never by sorting every runnable row.
CLAIM_ORDER = "ORDER BY priority DESC, created"
# A job whose ``run_after`` has come (the parameter is the claim's ``now``).
DUE = "(run_after IS NULL OR run_after <= %s)"


def runnable_in(queue: str) -> str:
    """The WHERE condition of runnable jobs of the queue named by the SQL ``queue``."""
    return f"state IN ('NEW', 'READY') AND queue_name = {queue} AND {DUE}"


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
        job.state, job.lease_token, job.lease_expires_at = "PROCESSING", self.token, self.expires
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


class Poller:
    """Waits for work by sleeping: ``wait(timeout)`` returns after ``timeout`` or at ``stop``."""

    def __init__(self, stop: threading.Event):
        self.stop = stop

    def listening(self) -> bool:
        """Make sure the wake-up channel is up before a look for work (a poller has none)."""
        return False

    def wait(self, timeout: float) -> bool:
        """Block up to ``timeout`` seconds or until shutdown; True if woken by a notification."""
        self.stop.wait(timeout)
        return False

    def close(self) -> None:
        """Let go of what the waiter holds (a poller holds nothing)."""


class Backend(abc.ABC):
    """One database engine. One instance per database alias, shared by its threads.

    An instance keeps no connection: every method that talks to the database is
    given the calling thread's ``connection`` (Django's connections are per thread).
    """

    #: ``connection.vendor`` of the databases this engine serves.
    vendor: ClassVar[str]
    #: A query for the server's current time in seconds since the Unix epoch, UTC
    #: (None: the database has no clock of its own, the local one is used).
    server_clock_sql: ClassVar[str | None] = None

    def __init__(self, alias: str):
        self.alias = alias
        self._plans: dict[tuple[type[models.Model], tuple[str, ...]], ClaimPlan] = {}
        self._plans_lock = threading.Lock()

    def __repr__(self) -> str:
        return f"<{type(self).__name__} {self.alias!r}>"

    # -- claiming -------------------------------------------------------------

    def claim_plan(
        self, connection, model: type[models.Model], queue_names: Sequence[str]
    ) -> ClaimPlan:
        """The claim statement for ``queue_names``, built on first use and cached."""
        key = (model, tuple(queue_names))
        plan = self._plans.get(key)
        if plan is None:
            with self._plans_lock:
                plan = self._plans.get(key)
                if plan is None:
                    plan = self._plans[key] = self.build_claim_plan(connection, model, key[1])
        return plan

    @abc.abstractmethod
    def build_claim_plan(
        self, connection, model: type[models.Model], queue_names: tuple[str, ...]
    ) -> ClaimPlan:
        """Write the claim statement for ``queue_names`` (called once per list of queues)."""

    @abc.abstractmethod
    def claim_rows(self, connection, plan: ClaimPlan, claim: Claim, limit: int) -> list[tuple]:
        """Claim up to ``limit`` runnable rows and return them, every concrete column.

        Inside the caller's transaction if one is open, else in a short one of its
        own. Never waits for a row another worker holds.
        """

    def claim(self, connection, plan: ClaimPlan, claim: Claim, limit: int) -> list[models.Model]:
        """Claim up to ``limit`` jobs with ``claim``'s values; instances as the rows now read."""
        rows = self.claim_rows(connection, plan, claim, limit)
        return instances_from_rows(plan.model, connection, plan.fields, rows)

    def candidate_params(self, plan: ClaimPlan, now: Any, limit: int) -> list:
        """The parameters of the candidate query: per queue (name, now, limit), then limit."""
        if len(plan.queue_names) == 1:
            return [plan.queue_names[0], now, limit]
        return [value for name in plan.queue_names for value in (name, now, limit)] + [limit]

    # -- writes ---------------------------------------------------------------

    def execute_update(self, connection, sql: str, params: Sequence[Any]) -> int:
        """Run one UPDATE the worker makes for a job it holds; the number of rows it changed.

        It commits as any autocommit statement does (or joins the caller's transaction).
        """
        with connection.cursor() as cursor:
            cursor.execute(sql, params)
            return cursor.rowcount

    def can_insert_directly(self) -> bool:
        """Whether :meth:`insert_rows` works with this database's driver."""
        return True

    def insert_rows(
        self,
        model: type[models.Model],
        connection,
        objs: list[models.Model],
        batch_size: int | None,
    ) -> None:
        """Insert ``objs`` (complete: keys and timestamps set) in one transaction.

        Every value goes through its field's preparation, as ``Model.save`` sends it.
        This default runs one ``executemany`` per ``batch_size`` rows (5,000 if None).
        """
        fields = model._meta.concrete_fields
        table, columns = quoted_table_and_columns(connection, model)
        placeholders = ", ".join(["%s"] * len(fields))
        sql = f"INSERT INTO {table} ({columns}) VALUES ({placeholders})"
        rows = prepared_rows(fields, objs, connection)
        size = batch_size or 5000
        # One transaction, as the ORM's bulk_create: SQLite would otherwise commit every row.
        atomic = transaction.atomic(using=connection.alias, savepoint=False)
        with atomic, connection.cursor() as cursor:
            for start in range(0, len(rows), size):
                cursor.executemany(sql, rows[start : start + size])

    # -- the worker's connection ----------------------------------------------

    def prepare_worker_connection(self, connection) -> None:
        """Set up the worker's main connection before it starts (nothing by default)."""
        return None

    def waiter(self, stop: threading.Event, queue_names: Sequence[str], *, listen: bool) -> Poller:
        """How a worker of ``queue_names`` waits for work; ``listen=False`` always polls."""
        return Poller(stop)
