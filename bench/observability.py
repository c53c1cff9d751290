"""What the views of the queue cost on a big job table: metrics' gauges, admin charts.

    .venv/bin/python bench/observability.py --finished 1000000 --days 7 [--url URL]

Fills a fresh database (``dbq_observability_bench``; PostgreSQL by default, MariaDB/MySQL with
a ``mysql://`` URL, SQLite with a ``sqlite:///`` one) with ``--finished`` finished jobs
(one in 20 FAILED) ending over the last ``--days`` days, in 10-minute slices, plus 1,000 NEW, 200
READY and 50 PROCESSING ones over five queues. Then times, ``--rounds`` times each:

- ``gauges``: ``QueueGauges.collect()``, the queries a scrape of the metrics view makes;
- ``activity``: the admin overview's charts (``activity_context``: throughput per
  minute and per hour, wait percentiles, busiest job names);
- ``overview table``: the overview's table (``queue_overview``: one aggregate over the
  whole table, grouped by queue).

Prints each timing and the medians, in milliseconds.
"""

from __future__ import annotations

import argparse
import datetime
import statistics
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "bench"))

from benchkit import filler  # noqa: E402
from benchkit.database import fresh_database  # noqa: E402


def fill(finished: int, days: float) -> None:
    """The runnable and running jobs, then the finished ones in 10-minute slices, oldest
    first: rows that ended together lie together, as in a table filled by workers."""
    from django.db import transaction
    from django.utils import timezone

    from django_dbq.models import Job

    filler.fill(Job, lambda: Job.objects.create(name="noop"), 0, 1000, {})
    queues = [f"queue{number}" for number in range(5)]
    for number, job in enumerate(Job.objects.filter(state="NEW")[:250]):
        state = "PROCESSING" if number < 50 else "READY"
        Job.objects.filter(pk=job.pk).update(
            state=state, queue_name=queues[number % 5], worker_id=f"host:{number % 7}"
        )
    template = Job.objects.create(name="noop")
    template = Job.objects.get(pk=template.pk)
    slices = max(int(days * 24 * 6), 1)
    now = timezone.now()
    with transaction.atomic():
        for index in range(slices):
            ended = now - datetime.timedelta(minutes=10) * (slices - index)
            template.finished_at = ended
            template.started_at = ended - datetime.timedelta(seconds=1)
            template.created = ended - datetime.timedelta(seconds=3)
            template.next_task = ""
            count = finished // slices + (1 if index < finished % slices else 0)
            for state, share in (("COMPLETE", count - count // 20), ("FAILED", count // 20)):
                template.state = state
                filler.insert_rows(Job, template, share)
        Job.objects.filter(pk=template.pk).delete()
    filler.analyze(Job)


def timed(call, rounds: int) -> list[float]:
    timings = []
    for _ in range(rounds):
        began = time.perf_counter()
        call()
        timings.append((time.perf_counter() - began) * 1000)
    return timings


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--url", default="postgres://postgres@127.0.0.1:5432/test")
    parser.add_argument("--finished", type=int, default=1_000_000)
    parser.add_argument("--days", type=float, default=7.0)
    parser.add_argument("--rounds", type=int, default=7)
    options = parser.parse_args()
    fresh_database(options.url, "dbq_observability_bench")
    from django.db import connection

    from django_dbq.metrics.gauges import QueueGauges
    from django_dbq.models import Job

    started = time.perf_counter()
    fill(options.finished, options.days)
    took = time.perf_counter() - started
    print(f"{connection.vendor}: filled {Job.objects.count()} jobs in {took:.0f} s")
    from django.utils import timezone

    from django_dbq.admin.overview import activity_context, queue_overview

    jobs = Job.objects.all()
    day = jobs.filter(finished_at__gte=timezone.now() - datetime.timedelta(days=1)).count()
    print(f"finished in the last day: {day}")
    results = {
        "gauges": timed(lambda: list(QueueGauges().collect()), options.rounds),
        "activity": timed(lambda: activity_context(jobs, timezone.now()), options.rounds),
        "overview table": timed(lambda: queue_overview(jobs, timezone.now()), options.rounds),
    }
    for name, timings in results.items():
        shown = " ".join(f"{timing:.1f}" for timing in timings)
        print(f"{name} (ms): {shown}; median {statistics.median(timings):.1f}")


if __name__ == "__main__":
    main()
