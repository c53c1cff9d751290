"""Driver for Procrastinate (run with its virtualenv's Python)."""

from __future__ import annotations

import os
import sys
import time
from pathlib import Path

import psycopg
from benchkit import harness, iowait
from procrastinate_app import app, chain_step, io_wait, noop, pickup

HERE = Path(__file__).resolve().parent
BATCH = 5000
FILL_SQL = """
INSERT INTO procrastinate_jobs (queue_name, task_name, args, status)
SELECT 'default', 'noop', '{}'::jsonb, %s::procrastinate_job_status
FROM generate_series(1, %s)
"""


class Procrastinate:
    name = "procrastinate"
    can_drain = True
    poll_cycle = 0.5

    def __init__(self) -> None:
        self.dsn = os.environ["PROCRASTINATE_DSN"]
        self.conn: psycopg.Connection | None = None
        app.open()

    def _sql(self, sql: str, params: tuple[object, ...] = ()) -> list[tuple[object, ...]]:
        # One connection for the driver's life: the io scenario polls every few
        # milliseconds, and a new server process per poll would load the machine.
        if self.conn is None or self.conn.closed:
            self.conn = psycopg.connect(self.dsn, autocommit=True)
        cur = self.conn.execute(sql, params)
        return cur.fetchall() if cur.description else []

    def reset(self) -> None:
        self._sql("TRUNCATE procrastinate_jobs, procrastinate_workers CASCADE")

    def enqueue_bulk(self, n: int, kind: str) -> None:
        task, args = {"chain3": (chain_step, {"step": 1}), "io": (io_wait, {})}.get(
            kind, (noop, {})
        )
        for start in range(0, n, BATCH):
            task.batch_defer(*[args] * min(BATCH, n - start))

    def enqueue_one(self, kind: str) -> float:
        (pickup if kind == "pickup" else noop).defer()
        return time.time()

    def worker(
        self, drain: bool, concurrency: int = 1, mode: str | None = None
    ) -> harness.WorkerSpec:
        # One asyncio process whatever the concurrency: ``mode`` is ours only.
        argv = [
            str(Path(sys.executable).parent / "procrastinate"),
            "--app=procrastinate_app.app",
            "worker",
            f"--concurrency={concurrency}",
            "--one-shot" if drain else "--wait",
        ]
        return harness.WorkerSpec(argv=argv, env={"PYTHONPATH": f"{HERE}:{HERE.parent}"})

    def completed(self) -> int:
        rows = self._sql(
            "SELECT count(*) FROM procrastinate_jobs WHERE status = 'succeeded'"
            " AND (task_name IN ('noop', 'io_wait')"
            " OR (task_name = 'chain_step' AND args->>'step' = '3'))"
        )
        return int(rows[0][0])

    def backend_pids(self) -> set[int]:
        return {int(row[0]) for row in self._sql(iowait.BACKENDS_SQL)}

    def fill_backlog(self, finished: int, queued: int) -> None:
        self._sql(FILL_SQL, ("todo", queued))
        self._sql(FILL_SQL, ("succeeded", finished))
        self._sql("ANALYZE procrastinate_jobs")


if __name__ == "__main__":
    harness.main(Procrastinate)
