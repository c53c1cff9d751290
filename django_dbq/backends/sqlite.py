"""SQLite: the PostgreSQL-shaped claim inside ``BEGIN IMMEDIATE``, WAL for the worker.

SQLite has one writer at a time and no row locks. Taking the write lock up front
(``BEGIN IMMEDIATE``) means no read-then-upgrade, which fails with "database is
locked". Every process using the file runs on one host, so the local clock is the
database's clock; there is no LISTEN, so workers poll.
"""

from __future__ import annotations

import logging

from django.db import DatabaseError, models

from .base import (
    CLAIM_ASSIGNMENTS,
    CLAIM_ORDER,
    Backend,
    Claim,
    ClaimPlan,
    quoted_table_and_columns,
    runnable_in,
)

logger = logging.getLogger(__name__)


class SQLiteBackend(Backend):
    vendor = "sqlite"

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

    def claim_rows(self, connection, plan: ClaimPlan, claim: Claim, limit: int) -> list[tuple]:
        params = claim.assignment_params() + self.candidate_params(plan, claim.prepared_now, limit)
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
