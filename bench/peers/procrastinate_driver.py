"""Driver for Procrastinate (run with its virtualenv's Python)."""

from __future__ import annotations

import os
import sys
import time
from pathlib import Path

import psycopg
from benchkit import harness
from procrastinate_app import app, chain_step, noop, pickup

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
        app.open()

    def _sql(self, sql: str, params: tuple[object, ...] = ()) -> list[tuple[object, ...]]:
        with psycopg.connect(self.dsn, autocommit=True) as conn:
            cur = conn.execute(sql, params)
            return cur.fetchall() if cur.description else []

    def reset(self) -> None:
        self._sql("TRUNCATE procrastinate_jobs, procrastinate_workers CASCADE")

    def enqueue_bulk(self, n: int, kind: str) -> None:
        task, args = (chain_step, {"step": 1}) if kind == "chain3" else (noop, {})
        for start in range(0, n, BATCH):
            task.batch_defer(*[args] * min(BATCH, n - start))

    def enqueue_one(self, kind: str) -> float:
        (pickup if kind == "pickup" else noop).defer()
        return time.time()

    def worker(self, drain: bool) -> harness.WorkerSpec:
        argv = [
            str(Path(sys.executable).parent / "procrastinate"),
            "--app=procrastinate_app.app",
            "worker",
            "--concurrency=1",
            "--one-shot" if drain else "--wait",
        ]
        return harness.WorkerSpec(argv=argv, env={"PYTHONPATH": f"{HERE}:{HERE.parent}"})

    def completed(self) -> int:
        rows = self._sql(
            "SELECT count(*) FROM procrastinate_jobs WHERE status = 'succeeded'"
            " AND (task_name = 'noop' OR (task_name = 'chain_step' AND args->>'step' = '3'))"
        )
        return int(rows[0][0])

    def fill_backlog(self, finished: int, queued: int) -> None:
        self._sql(FILL_SQL, ("todo", queued))
        self._sql(FILL_SQL, ("succeeded", finished))
        self._sql("ANALYZE procrastinate_jobs")


if __name__ == "__main__":
    harness.main(Procrastinate)
