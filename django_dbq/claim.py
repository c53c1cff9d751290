"""Claiming runnable jobs, in as few round trips as each database allows.

- PostgreSQL: one ``UPDATE ... WHERE id IN (SELECT ... FOR UPDATE SKIP LOCKED) RETURNING``.
- SQLite: the same statement without row locks, inside ``BEGIN IMMEDIATE`` so the
  write lock is taken up front (no read-then-upgrade, which fails with "database is locked").
- MySQL/MariaDB: ``SELECT ... FOR UPDATE SKIP LOCKED`` then ``UPDATE`` in one short transaction.

No worker ever waits on a row another worker has claimed.
"""

from __future__ import annotations

import datetime
import uuid
from collections.abc import Sequence

from django.db import connections
from django.utils import timezone

from . import leases
from .models import Job

CLAIMED_VALUES = ("state", "lease_token", "lease_expires_at", "worker_id", "started_at", "modified")


class Claimer:
    """Claims up to ``limit`` runnable jobs of ``queue_names`` for one worker."""

    def __init__(
        self, using: str, queue_names: Sequence[str], worker_id: str, lease_seconds: float
    ):
        self.using = using
        self.queue_names = list(queue_names)
        self.worker_id = worker_id
        self.lease_seconds = lease_seconds
        connection = connections[using]
        self.vendor = connection.vendor
        quote = connection.ops.quote_name
        self.fields = list(Job._meta.concrete_fields)
        self.columns = ", ".join(quote(field.column) for field in self.fields)
        self.table = quote(Job._meta.db_table)
        # Each queue is read in index order (the claim indexes lead with the queue), and
        # several queues are merged by priority: never a sort of every runnable row.
        order = "ORDER BY priority DESC, created"
        runnable = "(run_after IS NULL OR run_after <= %s)"
        several = len(self.queue_names) > 1
        if self.vendor == "mysql":
            # dbq_runnable_queue is a generated column (see migration 0008): it is the
            # queue name while the job is runnable, so one index serves the claim order.
            branch = (
                f"SELECT {self.columns} FROM {self.table} WHERE dbq_runnable_queue = %s "
                f"AND {runnable} {order} LIMIT %s FOR UPDATE SKIP LOCKED"
            )
            if several:
                branches = " UNION ALL ".join([f"({branch})"] * len(self.queue_names))
                self.select_sql = f"{branches} {order} LIMIT %s"
            else:
                self.select_sql = branch
        else:
            condition = f"state IN ('NEW', 'READY') AND queue_name = %s AND {runnable}"
            if self.vendor == "postgresql" and several:
                values = ", ".join(["(%s)"] * len(self.queue_names))
                candidates = (
                    f"SELECT c.id FROM (VALUES {values}) AS q(name) CROSS JOIN LATERAL "
                    f"(SELECT id, priority, created FROM {self.table} "
                    f"WHERE {condition.replace('queue_name = %s', 'queue_name = q.name')} "
                    f"{order} LIMIT %s FOR UPDATE SKIP LOCKED) AS c "
                    "ORDER BY c.priority DESC, c.created LIMIT %s"
                )
            elif self.vendor == "postgresql":
                candidates = (
                    f"SELECT id FROM {self.table} WHERE {condition} "
                    f"{order} LIMIT %s FOR UPDATE SKIP LOCKED"
                )
            elif several:  # SQLite: the write lock is held, no row locks needed
                branch = (
                    f"SELECT * FROM (SELECT id, priority, created FROM {self.table} "
                    f"WHERE {condition} {order} LIMIT %s)"
                )
                branches = " UNION ALL ".join([branch] * len(self.queue_names))
                candidates = f"SELECT id FROM ({branches} {order} LIMIT %s)"
            else:
                candidates = f"SELECT id FROM {self.table} WHERE {condition} {order} LIMIT %s"
            self.claim_sql = (
                f"UPDATE {self.table} SET state = 'PROCESSING', lease_token = %s, "
                "lease_expires_at = %s, worker_id = %s, started_at = %s, modified = %s, "
                f"attempts = attempts + 1 WHERE id IN ({candidates}) RETURNING {self.columns}"
            )

    def select_params(self, now, limit: int) -> list:
        """Parameters of the candidate query, in the order the SQL above uses them."""
        if len(self.queue_names) == 1:
            return [self.queue_names[0], now, limit]
        if self.vendor == "postgresql":
            return [*self.queue_names, now, limit, limit]
        return [value for name in self.queue_names for value in (name, now, limit)] + [limit]

    def _prep_datetime(self, value: datetime.datetime):
        return Job._meta.get_field("modified").get_db_prep_value(value, connections[self.using])

    def claim(self, limit: int = 1) -> list[Job]:
        """Claim and return up to ``limit`` jobs, highest priority then oldest first."""
        connection = connections[self.using]
        now = timezone.now()
        token = uuid.uuid4()
        expires = leases.deadline(self.lease_seconds, self.using)
        prep_token = Job._meta.get_field("lease_token").get_db_prep_value(token, connection)
        prep_now, prep_expires = self._prep_datetime(now), self._prep_datetime(expires)
        outer = connection.in_atomic_block
        connection.ensure_connection()
        with connection.cursor() as cursor:
            if self.vendor == "mysql":
                rows = self._claim_mysql(cursor, outer, limit, [prep_token, prep_expires, prep_now])
            else:
                params = [prep_token, prep_expires, self.worker_id, prep_now, prep_now]
                params += self.select_params(prep_now, limit)
                begin = "BEGIN IMMEDIATE" if self.vendor == "sqlite" else "BEGIN"
                if not outer and self.vendor == "sqlite":
                    cursor.execute(begin)
                    try:
                        cursor.execute(self.claim_sql, params)
                        rows = cursor.fetchall()
                        cursor.execute("COMMIT")
                    except BaseException:
                        cursor.execute("ROLLBACK")
                        raise
                else:
                    cursor.execute(self.claim_sql, params)
                    rows = cursor.fetchall()
        jobs = self._to_jobs(connection, rows)
        if self.vendor == "mysql":
            for job in jobs:
                job.state, job.lease_token, job.lease_expires_at = "PROCESSING", token, expires
                job.worker_id, job.started_at, job.modified = self.worker_id, now, now
                job.attempts += 1
        for job in jobs:
            job.claim_token = token
        jobs.sort(key=lambda job: (-job.priority, job.created))
        return jobs

    def _claim_mysql(self, cursor, outer: bool, limit: int, prepared: list) -> list:
        prep_token, prep_expires, prep_now = prepared
        if not outer:
            cursor.execute("START TRANSACTION")
        try:
            cursor.execute(self.select_sql, self.select_params(prep_now, limit))
            rows = cursor.fetchall()
            if rows:
                ids = [row[0] for row in rows]
                cursor.execute(
                    f"UPDATE {self.table} SET state = 'PROCESSING', lease_token = %s, "
                    "lease_expires_at = %s, worker_id = %s, started_at = %s, modified = %s, "
                    f"attempts = attempts + 1 WHERE id IN ({', '.join(['%s'] * len(ids))})",
                    [prep_token, prep_expires, self.worker_id, prep_now, prep_now, *ids],
                )
            if not outer:
                cursor.execute("COMMIT")
        except BaseException:
            if not outer:
                cursor.execute("ROLLBACK")
            raise
        return rows

    def _to_jobs(self, connection, rows: list) -> list[Job]:
        if not rows:
            return []
        compiler = Job.objects.none().query.get_compiler(connection=connection)
        columns = [field.get_col(Job._meta.db_table) for field in self.fields]
        converters = compiler.get_converters(columns)
        if converters:
            rows = list(compiler.apply_converters(rows, converters))
        names = [field.attname for field in self.fields]
        return [Job.from_db(self.using, names, row) for row in rows]
