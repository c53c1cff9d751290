"""PostgreSQL: one-statement claims, COPY, fast commits, LISTEN/NOTIFY.

- Claim: one ``UPDATE ... WHERE id IN (SELECT ... FOR UPDATE SKIP LOCKED) RETURNING``;
  several queues are read one index range each through a ``LATERAL`` join.
- Bulk insert (psycopg 3): the rows are streamed with ``COPY``.
- The worker's bookkeeping commits without waiting for the WAL flush (``DBQ_FAST_COMMIT``).
- Waiting: a trigger (migration 0008) notifies ``channel_name(queue)`` whenever a job
  of that queue becomes runnable, inside the transaction that made it so; the worker
  LISTENs on a connection of its own and hears of it the moment it commits.
"""

from __future__ import annotations

import hashlib
import json
import logging
import threading
import time
from collections.abc import Sequence
from typing import Any

from django.db import connections, models

from .. import conf
from . import postgresql_ends
from .base import Backend, Poller
from .claims import (
    CLAIM_ASSIGNMENTS,
    CLAIM_ORDER,
    RUNNABLE,
    Claim,
    ClaimPlan,
    quoted_table_and_columns,
    runnable_in,
)
from .rows import prepared_rows

logger = logging.getLogger(__name__)

# The longest a LISTEN wait blocks before looking at the shutdown flag again.
SLICE = 0.25


def _read_committed() -> Any:
    # Imported when first needed, as below: this module loads without any PostgreSQL driver.
    from django.db.backends.postgresql.psycopg_any import IsolationLevel

    return IsolationLevel.READ_COMMITTED


def _is_psycopg3() -> bool:
    # Imported when first needed: this module loads without any PostgreSQL driver.
    from django.db.backends.postgresql.psycopg_any import is_psycopg3

    return is_psycopg3


class PostgreSQLBackend(Backend):
    vendor = "postgresql"
    server_clock_sql = "SELECT EXTRACT(EPOCH FROM clock_timestamp())"

    def build_claim_plan(
        self, connection, model: type[models.Model], queue_names: tuple[str, ...]
    ) -> ClaimPlan:
        table, columns = quoted_table_and_columns(connection, model)
        if len(queue_names) > 1:
            values = ", ".join(["(%s)"] * len(queue_names))
            candidates = (
                f"SELECT c.id FROM (VALUES {values}) AS q(name) CROSS JOIN LATERAL "
                f"(SELECT id, priority, created FROM {table} WHERE {runnable_in('q.name')} "
                f"{CLAIM_ORDER} LIMIT %s FOR UPDATE SKIP LOCKED) AS c "
                "ORDER BY c.priority DESC, c.created LIMIT %s"
            )
        else:
            candidates = (
                f"SELECT id FROM {table} WHERE {runnable_in('%s')} "
                f"{CLAIM_ORDER} LIMIT %s FOR UPDATE SKIP LOCKED"
            )
        sql = (
            f"UPDATE {table} SET {CLAIM_ASSIGNMENTS} WHERE id IN ({candidates}) RETURNING {columns}"
        )
        return ClaimPlan(model, queue_names, sql, tuple(model._meta.concrete_fields))

    def candidate_params(self, plan: ClaimPlan, now: Any, limit: int) -> list:
        if len(plan.queue_names) == 1:
            return [plan.queue_names[0], now, limit]
        return [*plan.queue_names, now, limit, limit]

    def build_claim_by_id_plan(self, connection, model: type[models.Model]) -> ClaimPlan:
        table, columns = quoted_table_and_columns(connection, model)
        sql = (
            f"UPDATE {table} SET {CLAIM_ASSIGNMENTS} WHERE id IN (SELECT id FROM {table} "
            f"WHERE id = %s AND {RUNNABLE} FOR UPDATE SKIP LOCKED) RETURNING {columns}"
        )
        return ClaimPlan(model, (), sql, tuple(model._meta.concrete_fields))

    def claim_rows(
        self, connection, plan: ClaimPlan, claim: Claim, limit: int, candidate_params=None
    ) -> list[tuple]:
        # One statement: its own transaction in autocommit, or part of the caller's.
        if candidate_params is None:
            candidate_params = self.candidate_params(plan, claim.prepared_now, limit)
        params = claim.assignment_params() + candidate_params
        with connection.cursor() as cursor:
            cursor.execute(plan.sql, params)
            return cursor.fetchall()

    def begin_limited_claim(self, connection, cursor) -> None:
        # The count must see the claims committed while this one waited for the queue's
        # row; a snapshot from before the wait (REPEATABLE READ, SERIALIZABLE) would not.
        if connection.isolation_level != _read_committed():
            cursor.execute("SET TRANSACTION ISOLATION LEVEL READ COMMITTED")

    # -- writes ---------------------------------------------------------------

    def execute_update(self, connection, sql: str, params: Sequence[Any]) -> int:
        if not self._commits_without_flush(connection):
            return super().execute_update(connection, sql, params)
        with connection.cursor() as cursor:
            postgresql_ends.execute_fast(connection, cursor, sql, params)
            while not (cursor.statusmessage or "").startswith("UPDATE"):
                if not cursor.nextset():
                    break
            return cursor.rowcount

    def complete_with_dependents(
        self, connection, update_sql: str, params: list, model: type[models.Model], now: Any
    ) -> tuple[bool, set] | None:
        if not self._commits_without_flush(connection):
            return None
        sql = postgresql_ends.completion_sql(connection, update_sql, model)
        return postgresql_ends.run_completion(connection, sql, [*params, now])

    def relax_commit(self, connection) -> None:
        # The end of a job with dependents: its transaction is the worker's bookkeeping too.
        if conf.get("DBQ_FAST_COMMIT"):
            with connection.cursor() as cursor:
                cursor.execute("SET LOCAL synchronous_commit TO OFF")

    @staticmethod
    def _commits_without_flush(connection) -> bool:
        return (
            not connection.in_atomic_block
            and conf.get("DBQ_FAST_COMMIT")
            and _is_psycopg3()  # psycopg2 cannot step through the results of several statements
            # Several statements in one call need psycopg's client-side binding (Django's default).
            and not connection.settings_dict.get("OPTIONS", {}).get("server_side_binding")
        )

    def can_insert_directly(self) -> bool:
        # COPY from Python rows needs psycopg 3; psycopg2 goes through the ORM.
        return _is_psycopg3()

    def insert_rows(
        self,
        model: type[models.Model],
        connection,
        objs: list[models.Model],
        batch_size: int | None,
    ) -> None:
        """Stream the rows with ``COPY`` (one statement, whatever ``batch_size``)."""
        table, columns = quoted_table_and_columns(connection, model)
        rows = prepared_rows(model._meta.concrete_fields, objs, connection, prepare_json=_json_text)
        sql = f"COPY {table} ({columns}) FROM STDIN"
        with (
            connection.cursor() as cursor,
            connection.wrap_database_errors,
            cursor.cursor.copy(sql) as copy,
        ):
            for row in rows:
                copy.write_row(row)

    # -- the worker's connection ----------------------------------------------

    def waiter(self, stop: threading.Event, queue_names: Sequence[str], *, listen: bool) -> Poller:
        if not listen:  # DBQ_LISTEN = False, e.g. behind PgBouncer in transaction mode
            return Poller(stop)
        return PostgresListener(stop, self.alias, queue_names)


def _json_text(value: Any) -> str | None:
    """A JSON field's value as COPY's text (as the field's own ``json.dumps`` would)."""
    if value is None:
        return None
    if not value and type(value) in _EMPTY_JSON:  # the defaults: {} and []
        return _EMPTY_JSON[type(value)]
    return json.dumps(value)


_EMPTY_JSON = {dict: "{}", list: "[]"}


def channel_name(queue_name: str) -> str:
    """The NOTIFY channel of a queue (must match the trigger: 'dbq_' || md5(queue_name)).

    A hash of the name, so any queue name makes a safe identifier.
    """
    return "dbq_" + hashlib.md5(queue_name.encode("utf-8"), usedforsecurity=False).hexdigest()


class PostgresListener(Poller):
    """A dedicated connection LISTENing on the worker's queues; falls back to polling on errors."""

    def __init__(self, stop: threading.Event, using: str, queue_names: Sequence[str]):
        super().__init__(stop)
        self.using = using
        self.channels = [channel_name(name) for name in queue_names]
        self.connection = None
        self.retry_at = 0.0

    def _connect(self):
        import psycopg  # the LISTEN connection needs psycopg 3, only on PostgreSQL

        # Straight from psycopg, never from Django's pool: this connection is held
        # for the worker's lifetime and would use up a pool slot for good.
        params = connections[self.using].get_connection_params()
        connection = psycopg.connect(**params, autocommit=True)
        for channel in self.channels:
            connection.execute(f"LISTEN {channel}")
        return connection

    def listening(self) -> bool:
        """Make sure the LISTEN connection is up (call before looking for work).

        Notifications already received are dropped: the look for work that follows
        sees the jobs they announced, so they would only cause an empty extra look.
        """
        if self.connection is not None and not self.connection.closed:
            try:
                self.drain()
                return True
            except Exception as error:
                logger.warning("LISTEN connection lost (%s); reconnecting", error)
                self.close()
        if time.monotonic() < self.retry_at:
            return False
        try:
            self.connection = self._connect()
            return True
        except Exception as error:
            logger.warning("LISTEN connection failed (%s); polling until it is back", error)
            self.retry_at = time.monotonic() + 5.0
            self.connection = None
            return False

    def wait(self, timeout: float) -> bool:
        """Block until a notification, ``timeout``, or shutdown; True if notified."""
        deadline = time.monotonic() + timeout
        while not self.stop.is_set():
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                return False
            if self.connection is None or self.connection.closed:
                return super().wait(min(remaining, SLICE))
            try:
                if any(
                    True
                    for _ in self.connection.notifies(timeout=min(remaining, SLICE), stop_after=1)
                ):
                    self.drain()
                    return True
            except Exception as error:
                logger.warning("LISTEN connection lost (%s); polling until it is back", error)
                self.close()
        return False

    def drain(self) -> None:
        """Swallow notifications already queued: a burst of inserts costs one wake-up."""
        for _ in self.connection.notifies(timeout=0):
            pass

    def close(self) -> None:
        if self.connection is not None:
            try:
                self.connection.close()
            except Exception:
                logger.debug("closing the LISTEN connection failed", exc_info=True)
            self.connection = None
