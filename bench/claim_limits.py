"""What a queue concurrency limit (``DBQ_QUEUES``) costs a claim: limited vs unlimited.

    .venv/bin/python bench/claim_limits.py --jobs 3000 --rounds 6 [--limit rate|both|key|new-key]

Claims and completes ``--jobs`` jobs one at a time from one queue, on PostgreSQL by
default (``--url``), alternately without a limit and with one too high to ever be
reached, so that only the claim's own cost differs (the limited claim's transaction:
lock the queue's row, count its running jobs, claim). ``--limit rate`` measures a rate
limit instead (too high to ever hold a claim back: lock, read the last start and the
server's clock, claim, write the start), ``--limit both`` the two together.
``--limit key`` compares plain jobs with jobs of distinct concurrency keys (limit 1000,
never reached), claimed by the same ``Claimer`` path as the worker's: the unlocked
look for candidates, then lock the key's row, count, claim. Their key rows are made
beforehand, as after each key's first claim; ``--limit new-key`` leaves that to the
claims (each one also makes its key's row). Rounds alternate which goes first, so a
drift in the machine's load does not favour one side. Prints the median microseconds
per claim+complete of each, and their ratio.

Uses its own database (``dbq_claim_limits``), dropped and made again at each run; on
PostgreSQL by default, on MariaDB/MySQL with a ``mysql://`` URL.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "bench"))

from benchkit.database import fresh_database  # noqa: E402


def setup(url: str) -> None:
    fresh_database(url, "dbq_claim_limits")


def one_round(jobs: int, limited: bool, kind: str = "concurrency") -> float:
    """Microseconds per claim + completion of ``jobs`` jobs."""
    from django_dbq.engine import Claimer
    from django_dbq.keys import ConcurrencyKey
    from django_dbq.models import Job
    from django_dbq.queues import Queue

    keyed = limited and kind in ("key", "new-key")
    keys = [f"key{index}" if keyed else None for index in range(jobs)]
    Job.objects.all().delete()
    ConcurrencyKey.objects.all().delete()
    if kind == "key":  # the keys' rows exist, as after each key's first claim
        ConcurrencyKey.objects.bulk_create([ConcurrencyKey(key=key) for key in keys if key])
    limit = 1000 if keyed else None  # never reached: each job completes before the next claim
    Job.objects.bulk_create(
        [
            Job(name="noop", queue_name="bench", concurrency_key=key, concurrency_limit=limit)
            for key in keys
        ]
    )
    limits: dict = {}
    if limited and not keyed:
        limits["queue_rows"] = Queue.objects
        if kind in ("concurrency", "both"):
            limits["limits"] = {"bench": 10**9}
        if kind in ("rate", "both"):
            limits["rates"] = {"bench": 1e-9}  # seconds between starts: never held back
    claimer = Claimer(Job.objects, ["bench"], "bench-worker", 60, **limits)
    done = Job.objects.filter
    started = time.perf_counter()
    for _ in range(jobs):
        (job,) = claimer.claim(1)
        done(pk=job.pk, lease_token=job.claim_token).update(state="COMPLETE", lease_token=None)
    return (time.perf_counter() - started) / jobs * 1e6


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--jobs", type=int, default=3000)
    parser.add_argument("--rounds", type=int, default=6)
    parser.add_argument("--url", default="postgres://postgres@127.0.0.1:5432/postgres")
    kinds = ["concurrency", "rate", "both", "key", "new-key"]
    parser.add_argument("--limit", choices=kinds, default="concurrency")
    options = parser.parse_args()
    setup(options.url)
    names = ("plain", "keyed") if "key" in options.limit else ("unlimited", "limited")
    results: dict[bool, list[float]] = {False: [], True: []}
    for index in range(options.rounds):
        for limited in (False, True) if index % 2 == 0 else (True, False):
            results[limited].append(one_round(options.jobs, limited, options.limit))
            print(
                f"round {index + 1}: {names[limited]} "
                f"{results[limited][-1]:.0f} us per claim+complete",
                flush=True,
            )
    off, on = (statistics.median(results[key]) for key in (False, True))
    print(
        f"median us per claim+complete: {names[0]} {off:.0f}, {names[1]} {on:.0f}, "
        f"ratio {on / off:.2f}"
    )


if __name__ == "__main__":
    main()
