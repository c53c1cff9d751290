"""SQLite: the PostgreSQL-shaped claim inside ``BEGIN IMMEDIATE``, WAL for the worker.

SQLite has one writer at a time and no row locks. Taking the write lock up front
(``BEGIN IMMEDIATE``) means no read-then-upgrade, which fails with "database is
locked"; a limited queue's claim (``DBQ_QUEUES``) opens its transaction with a
write for the same reason. Every process using the file runs on one host, so the local clock is the
database's clock; there is no LISTEN, so workers poll.
"""

from __future__ import annotations

import logging

from django.db import DatabaseError, models

from .base import Backend
from .claims import (
    CLAIM_ASSIGNMENTS,
    CLAIM_ORDER,
    RUNNABLE,
    Claim,
    ClaimPlan,
    quoted_table_and_columns,
    runnable_in,
)

logger = logging.getLogger(__name__)


class SQLiteBackend(Backend):
    vendor = "sqlite"
    # A limited queue's claim opens its transaction with this write: the first write
    # takes SQLite's one write lock at once (as BEGIN IMMEDIATE would), before any read.
    queue_lock_sql = "UPDATE {table} SET {name} = {name} WHERE {name} = %s"

    def lock_row(self, cursor, sql: str, name: str) -> bool:
        cursor.execute(sql, [name])
        return cursor.rowcount > 0

    def build_claim_plan(
        self, connection, model: type[models.Model], queue_names: tuple[str, ...]
    ) -> ClaimPlan:
        table, columns = quoted_table_and_columns(connection, model)
        condition = runnable_in("%s")
        if len(queue_names) > 1:  # the write lock is held: no row locks needed
            branch = (
                f"SELECT * FROM (SELECT id, priority, created FROM {table} "
                f"WHERE {condition} {CLAIM_ORDER} LIMIT %s)"
            )
            branches = " UNION ALL ".join([branch] * len(queue_names))
            candidates = f"SELECT id FROM ({branches} {CLAIM_ORDER} LIMIT %s)"
        else:
            candidates = f"SELECT id FROM {table} WHERE {condition} {CLAIM_ORDER} LIMIT %s"
        sql = (
            f"UPDATE {table} SET {CLAIM_ASSIGNMENTS} WHERE id IN ({candidates}) RETURNING {columns}"
        )
        return ClaimPlan(model, queue_names, sql, tuple(model._meta.concrete_fields))

    def build_claim_by_id_plan(self, connection, model: type[models.Model]) -> ClaimPlan:
        table, columns = quoted_table_and_columns(connection, model)
        sql = (
            f"UPDATE {table} SET {CLAIM_ASSIGNMENTS} WHERE id = %s AND {RUNNABLE} "
            f"RETURNING {columns}"
        )
        return ClaimPlan(model, (), sql, tuple(model._meta.concrete_fields))

    def claim_rows(
        self, connection, plan: ClaimPlan, claim: Claim, limit: int, candidate_params=None
    ) -> list[tuple]:
        if candidate_params is None:
            candidate_params = self.candidate_params(plan, claim.prepared_now, limit)
        params = claim.assignment_params() + candidate_params
        outer = connection.in_atomic_block
        with connection.cursor() as cursor:
            if outer:
                cursor.execute(plan.sql, params)
                return cursor.fetchall()
            cursor.execute("BEGIN IMMEDIATE")
            try:
                cursor.execute(plan.sql, params)
                rows = cursor.fetchall()
                cursor.execute("COMMIT")
            except BaseException:
                cursor.execute("ROLLBACK")
                raise
            return rows

    def prepare_worker_connection(self, connection) -> None:
        """Switch the file to WAL: readers (maintenance, the web app) work beside the writer."""
        try:
            with connection.cursor() as cursor:
                cursor.execute("PRAGMA journal_mode=WAL")
        except DatabaseError as error:
            logger.warning("Could not switch SQLite to WAL mode: %s", error)
