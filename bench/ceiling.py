"""The database's own ceiling: pgbench running the bare claim cycle.

Each pgbench transaction is one job: claim the best runnable row with
``UPDATE ... WHERE id = (SELECT ... FOR UPDATE SKIP LOCKED LIMIT 1) RETURNING``
(its own transaction), then mark it done (a second transaction), as a worker
does. The table has the claim-shaped partial index our library uses, and no
Python anywhere, so the rate is what PostgreSQL allows on this machine.
"""

from __future__ import annotations

import re
import tempfile
from pathlib import Path
from typing import Any

from bench.targets import PG_HOST, PG_PORT, PG_USER, recreate_pg, sh

DB = "ceiling_bench"
SCHEMA = """
CREATE TABLE bench_claim (
    id bigserial PRIMARY KEY,
    queue_name varchar(100) NOT NULL DEFAULT 'default',
    state varchar(20) NOT NULL DEFAULT 'READY',
    priority smallint NOT NULL DEFAULT 0,
    created timestamptz NOT NULL DEFAULT now(),
    started_at timestamptz,
    finished_at timestamptz
);
CREATE INDEX bench_claim_runnable ON bench_claim (queue_name, priority DESC, created)
    WHERE state IN ('NEW', 'READY');
"""
SCRIPT = """\
UPDATE bench_claim SET state = 'PROCESSING', started_at = now() WHERE id = (SELECT id FROM bench_claim WHERE state IN ('NEW', 'READY') AND queue_name = 'default' ORDER BY priority DESC, created LIMIT 1 FOR UPDATE SKIP LOCKED) RETURNING id \\gset
UPDATE bench_claim SET state = 'COMPLETE', finished_at = now() WHERE id = :id;
"""  # noqa: E501 (pgbench takes one command per line)
TPS = re.compile(r"^tps = ([0-9.]+) \(without initial connection time\)", re.MULTILINE)


def _psql(sql: str) -> str:
    return sh(["psql", "-h", PG_HOST, "-p", PG_PORT, "-U", PG_USER, "-d", DB, "-qAtc", sql])


def setup() -> None:
    recreate_pg(DB)
    _psql(SCHEMA)


def run(seconds: float, k: int, max_rate: int = 6000) -> dict[str, Any]:
    """Claim cycles on ``k`` clients for ``seconds``; returns jobs/s.

    The queue is filled with ``seconds * max_rate`` rows, more than this machine
    can claim in that time, so that no client ever finds it empty.
    """
    _psql("TRUNCATE bench_claim")
    rows = int(seconds * max_rate)
    _psql(f"INSERT INTO bench_claim (created) SELECT now() FROM generate_series(1, {rows})")
    _psql("VACUUM ANALYZE bench_claim")
    with tempfile.TemporaryDirectory() as tmp:
        script = Path(tmp) / "claim.sql"
        script.write_text(SCRIPT)
        out = sh(
            [
                "pgbench",
                *("-h", PG_HOST, "-p", PG_PORT, "-U", PG_USER),
                "-n",  # no vacuum of pgbench's own tables
                "-M",
                "prepared",
                *("-c", str(k), "-j", str(k), "-T", str(max(1, round(seconds)))),
                "-f",
                str(script),
                DB,
            ],
            timeout=seconds + 120,
        )
    match = TPS.search(out)
    done = int(_psql("SELECT count(*) FROM bench_claim WHERE state = 'COMPLETE'"))
    return {
        "workers": k,
        "jobs": done,
        "jobs_per_s": round(float(match.group(1)), 1) if match else None,
    }
