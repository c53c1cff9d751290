"""What dependency tracking costs: a fan-out/fan-in workflow against as many independent jobs.

    .venv/bin/python bench/workflow.py --parts 1000 --workers 2 --rounds 3

Two ``manage.py worker`` processes serve one database (PostgreSQL by default, ``--url``).
Rounds alternate between

- **independent**: ``parts + 1`` no-op jobs bulk-inserted; measured from the insert to the
  start of the last of them;
- **workflow**: ``parts`` no-op jobs plus one join waiting for all of them, enqueued with
  ``Workflow.enqueue()``; measured from the enqueue to the start of the join.

Also reported for the workflow: the join's pickup delay, from the end of its last part
to its start (``started_at`` and ``finished_at`` are stamped by the workers, on this
host's clock). Prints each round and the medians, and the overhead as a ratio.

Uses its own database (``dbq_workflow_bench``), dropped and made again at each run.
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "bench"))

from benchkit.database import fresh_database  # noqa: E402

DATABASE = "dbq_workflow_bench"


def setup(url: str) -> str:
    return fresh_database(url, DATABASE)


def wait(predicate, timeout: float = 600.0) -> None:
    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > deadline:
            raise SystemExit("timed out")
        time.sleep(0.005)


def independent_round(parts: int) -> float:
    """Seconds from the insert of ``parts + 1`` jobs to the start of the last one."""
    from django.db.models import Max

    from django_dbq.models import Job

    Job.objects.all().delete()
    started = time.time()
    Job.objects.bulk_create([Job(name="noop") for _ in range(parts + 1)])
    wait(lambda: not Job.objects.exclude(state="COMPLETE").exists())
    last = Job.objects.aggregate(last=Max("started_at"))["last"]
    return last.timestamp() - started


def workflow_round(parts: int) -> tuple[float, float]:
    """Seconds from ``enqueue()`` to the join's start, and the join's pickup delay."""
    from django.db.models import Max

    from django_dbq.models import Job
    from django_dbq.workflows import Workflow

    Job.objects.all().delete()
    Workflow.objects.all().delete()
    started = time.time()
    flow = Workflow(name="bench")
    added = [flow.add("noop") for _ in range(parts)]
    join = flow.add("noop", after=added)
    flow.enqueue()
    wait(lambda: Job.objects.filter(pk=join.pk, state="COMPLETE").exists())
    join.refresh_from_db()
    last_part = Job.objects.exclude(pk=join.pk).aggregate(last=Max("finished_at"))["last"]
    return join.started_at.timestamp() - started, (join.started_at - last_part).total_seconds()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--parts", type=int, default=1000)
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--url", default="postgres://postgres@127.0.0.1:5432/postgres")
    options = parser.parse_args()
    bench_url = setup(options.url)
    env = {**os.environ, "DATABASE_URL": bench_url, "DBQ_LOG_LEVEL": "WARNING"}
    workers = [
        subprocess.Popen(
            [sys.executable, "manage.py", "worker", "-v", "0"],
            cwd=ROOT,
            env=env,
            stdout=subprocess.DEVNULL,
        )
        for _ in range(options.workers)
    ]
    try:
        time.sleep(2)  # the workers' start-up is not what is measured
        plain, flows, delays = [], [], []
        for index in range(options.rounds):
            order = ("independent", "workflow") if index % 2 == 0 else ("workflow", "independent")
            for kind in order:
                if kind == "independent":
                    plain.append(independent_round(options.parts))
                    print(f"independent {plain[-1]:.3f} s", flush=True)
                else:
                    seconds, delay = workflow_round(options.parts)
                    flows.append(seconds)
                    delays.append(delay)
                    pickup = f"join pickup {delay * 1000:.1f} ms"
                    print(f"workflow {seconds:.3f} s, {pickup}", flush=True)
        independent, workflow = statistics.median(plain), statistics.median(flows)
        print(
            f"median s: independent {independent:.3f}, workflow {workflow:.3f}, "
            f"ratio {workflow / independent:.2f}; "
            f"join pickup median {statistics.median(delays) * 1000:.1f} ms"
        )
    finally:
        for worker in workers:
            worker.terminate()
        for worker in workers:
            worker.wait(timeout=30)


if __name__ == "__main__":
    main()
