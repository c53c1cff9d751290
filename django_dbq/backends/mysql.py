"""MariaDB/MySQL: ``SELECT ... FOR UPDATE SKIP LOCKED`` then ``UPDATE``, in one short transaction.

There is no ``UPDATE ... RETURNING``: the claim reads the rows it locks, updates
them, and tells the claimed instances what it wrote. No LISTEN either: workers poll.
"""

from __future__ import annotations

from django.db import models

from .base import Backend
from .claims import (
    CLAIM_ASSIGNMENTS,
    CLAIM_ORDER,
    DUE,
    RUNNABLE,
    Claim,
    ClaimPlan,
    quoted_table_and_columns,
)


class MySQLBackend(Backend):
    vendor = "mysql"
    # UTC computed by the server itself: no session time zone involved.
    server_clock_sql = (
        "SELECT TIMESTAMPDIFF(MICROSECOND, '1970-01-01 00:00:00', UTC_TIMESTAMP(6)) / 1e6"
    )

    def build_claim_plan(
        self, connection, model: type[models.Model], queue_names: tuple[str, ...]
    ) -> ClaimPlan:
        table, columns = quoted_table_and_columns(connection, model)
        # dbq_runnable_queue is a generated column (see migration 0008): it is the
        # queue name while the job is runnable, so one index serves the claim order.
        branch = (
            f"SELECT {columns} FROM {table} WHERE dbq_runnable_queue = %s "
            f"AND {DUE} {CLAIM_ORDER} LIMIT %s FOR UPDATE SKIP LOCKED"
        )
        if len(queue_names) > 1:
            branches = " UNION ALL ".join([f"({branch})"] * len(queue_names))
            select = f"{branches} {CLAIM_ORDER} LIMIT %s"
        else:
            select = branch
        return ClaimPlan(model, queue_names, select, tuple(model._meta.concrete_fields))

    def build_claim_by_id_plan(self, connection, model: type[models.Model]) -> ClaimPlan:
        table, columns = quoted_table_and_columns(connection, model)
        sql = f"SELECT {columns} FROM {table} WHERE id = %s AND {RUNNABLE} FOR UPDATE SKIP LOCKED"
        return ClaimPlan(model, (), sql, tuple(model._meta.concrete_fields))

    def keyed_runnable_in(self, count: int) -> str:
        # dbq_keyed_queue (migration 0013): the queue name while a keyed job is runnable.
        return f"j.dbq_keyed_queue IN ({', '.join(['%s'] * count)})"

    def claim_rows(
        self, connection, plan: ClaimPlan, claim: Claim, limit: int, candidate_params=None
    ) -> list[tuple]:
        """The locked rows as they read before the claim's UPDATE."""
        table = connection.ops.quote_name(plan.model._meta.db_table)
        outer = connection.in_atomic_block
        with connection.cursor() as cursor:
            if not outer:
                cursor.execute("START TRANSACTION")
            try:
                if candidate_params is None:
                    candidate_params = self.candidate_params(plan, claim.prepared_now, limit)
                cursor.execute(plan.sql, candidate_params)
                rows = cursor.fetchall()
                if rows:
                    ids = [row[0] for row in rows]
                    cursor.execute(
                        f"UPDATE {table} SET {CLAIM_ASSIGNMENTS} "
                        f"WHERE id IN ({', '.join(['%s'] * len(ids))})",
                        [*claim.assignment_params(), *ids],
                    )
                if not outer:
                    cursor.execute("COMMIT")
            except BaseException:
                if not outer:
                    cursor.execute("ROLLBACK")
                raise
        return rows

    def after_claim(self, claim: Claim, jobs: list[models.Model]) -> None:
        for job in jobs:  # the rows were read before the UPDATE
            claim.apply(job)
