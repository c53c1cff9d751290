"""What every database engine does for the queue: the interface, and the parts they share.

A backend is chosen once per database alias (see :func:`django_dbq.backends.for_connection`)
and is the only place that knows which database it talks to. Callers hand it the
model and the values; it knows nothing of workers, commands or the Tasks backend.

The interface, in the order a job meets it:

- **insert** many rows at once (``can_insert_directly``, ``insert_rows``);
- **claim** runnable rows for a worker (``claim_plan`` built once, then ``claim``);
  a limited queue's (``claim_limited``) and keyed jobs' (:mod:`.keyed`) under a lock;
- **write** the worker's own bookkeeping (``execute_update``);
- **read the server's clock** the leases run on (``server_clock_sql``);
- **wait for work** (``waiter``) and **set up** a worker's connection
  (``prepare_worker_connection``).
"""

from __future__ import annotations

import abc
import functools
import threading
from collections.abc import Sequence
from typing import Any, ClassVar

from django.db import models, transaction

from .claims import RUNNABLE, Claim, ClaimPlan, quoted_table_and_columns
from .limits import LimitPlan, RateGate, build_limit_plan
from .rows import instances_from_rows, prepared_rows


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
        self._limit_plans: dict[tuple, LimitPlan] = {}  # a race builds one twice: harmless
        self.keyed_plans: dict[tuple, Any] = {}  # (the same; see .keyed)

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
    def claim_rows(
        self, connection, plan: ClaimPlan, claim: Claim, limit: int, candidate_params=None
    ) -> list[tuple]:
        """Claim up to ``limit`` runnable rows and return them, every concrete column.

        Inside the caller's transaction if one is open, else in a short one of its
        own. Never waits for a row another worker holds. ``candidate_params``: the
        parameters of ``plan``'s candidates if not :meth:`candidate_params`'s.
        """

    def claim(self, connection, plan: ClaimPlan, claim: Claim, limit: int) -> list[models.Model]:
        """Claim up to ``limit`` jobs with ``claim``'s values; instances as the rows now read."""
        rows = self.claim_rows(connection, plan, claim, limit)
        jobs = instances_from_rows(plan.model, connection, plan.fields, rows)
        self.after_claim(claim, jobs)
        return jobs

    def after_claim(self, claim: Claim, jobs: list[models.Model]) -> None:  # noqa: B027 - a hook
        """Make the claimed instances read what the claim wrote (``RETURNING`` does it)."""

    @abc.abstractmethod
    def build_claim_by_id_plan(self, connection, model: type[models.Model]) -> ClaimPlan:
        """Write a claim of the one runnable job whose id is the candidates' parameter."""

    # -- keyed jobs (see .keyed) ------------------------------------------------

    def keyed_runnable_in(self, count: int) -> str:
        """The condition on ``j`` of runnable keyed jobs of ``count`` queues (``%s`` each)."""
        names = ", ".join(["%s"] * count)
        return f"j.{RUNNABLE} AND j.concurrency_key IS NOT NULL AND j.queue_name IN ({names})"

    # -- limited queues (see .limits) -------------------------------------------

    #: Locks one row of ``{table}`` by ``{name}`` until the transaction ends.
    queue_lock_sql: ClassVar[str] = "SELECT {name} FROM {table} WHERE {name} = %s FOR UPDATE"

    def limit_plan(
        self, connection, model: type[models.Model], queue_model: type[models.Model], name: str
    ) -> LimitPlan:
        """The claim of the limited queue ``name``, built on first use and cached."""
        key = (model, queue_model, name)
        plan = self._limit_plans.get(key)
        if plan is None:
            claim_plan = self.claim_plan(connection, model, [name])
            plan = build_limit_plan(
                connection, claim_plan, queue_model, self.queue_lock_sql, self.server_clock_sql
            )
            self._limit_plans[key] = plan
        return plan

    def claim_limited(
        self,
        connection,
        plan: LimitPlan,
        claim: Claim,
        limit: int,
        concurrency: int | None,
        rate: RateGate | None = None,
        take: Any = None,
    ) -> list[models.Model]:
        """Claim up to ``limit`` jobs of a queue that may have ``concurrency`` held at once
        (None: any number) and, with ``rate``, start one job per ``rate.spacing`` seconds.

        ``take(room)``: claims up to ``room`` jobs once the room is known (by default
        the queue's jobs without a key).
        """
        outer = connection.in_atomic_block
        with transaction.atomic(using=connection.alias, savepoint=False):
            with connection.cursor() as cursor:
                if not outer:
                    self.begin_limited_claim(connection, cursor)
                if not self.lock_queue(cursor, plan):
                    cursor.execute(plan.create, [plan.queue_name])
                    self.lock_queue(cursor, plan)
                room = limit
                if concurrency is not None:
                    cursor.execute(plan.running, [plan.queue_name])
                    room = min(limit, concurrency - cursor.fetchone()[0])
                if rate is not None and room > 0:
                    cursor.execute(plan.read_last, [plan.queue_name])
                    if rate.refuses(cursor.fetchone()):
                        return []
                    room = 1
            take = take or functools.partial(self.claim, connection, plan.claim, claim)
            jobs = take(room) if room > 0 else []
            if jobs and rate is not None:
                with connection.cursor() as cursor:
                    cursor.execute(plan.write_last, [rate.clock, plan.queue_name])
            return jobs

    def begin_limited_claim(self, connection, cursor) -> None:  # noqa: B027 - a hook
        """The first statement of a limited claim's own transaction (nothing by default)."""

    def lock_queue(self, cursor, plan: LimitPlan) -> bool:
        """Lock the queue's row (:attr:`queue_lock_sql`); False if it has none."""
        return self.lock_row(cursor, plan.lock, plan.queue_name)

    def lock_row(self, cursor, sql: str, name: str) -> bool:
        """Lock the row ``name`` with ``sql`` (from :attr:`queue_lock_sql`); False if none."""
        cursor.execute(sql, [name])
        return cursor.fetchone() is not None

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

    def complete_with_dependents(
        self, connection, update_sql: str, params: list, model: type[models.Model], now: Any
    ) -> tuple[bool, set] | None:
        """Complete a job and count it off its dependents in one round trip, if this engine
        can: (applied, workflows of the dependents that go on); None: it cannot."""
        return None

    def relax_commit(self, connection) -> None:  # noqa: B027 - a hook
        """In the worker's own transaction: let it commit as its single writes do."""

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
        """Insert ``objs`` (complete: keys and timestamps set) in one transaction, each value
        prepared by its field as ``Model.save`` does; by default one ``executemany`` per
        ``batch_size`` rows (5,000 if None)."""
        insert_many(model, connection, objs, batch_size)

    # -- the worker's connection ----------------------------------------------

    def prepare_worker_connection(self, connection) -> None:
        """Set up the worker's main connection before it starts (nothing by default)."""
        return None

    def waiter(self, stop: threading.Event, queue_names: Sequence[str], *, listen: bool) -> Poller:
        """How a worker of ``queue_names`` waits for work; ``listen=False`` always polls."""
        return Poller(stop)


def insert_many(
    model: type[models.Model], connection, objs: list[models.Model], batch_size: int | None
) -> None:
    """:meth:`Backend.insert_rows`'s default: ``executemany`` in one transaction."""
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
