"""Gauges read from the job table at scrape time: right across every worker and host."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

from django.db.models import Count, F, Min, Q
from django.db.models.functions import Coalesce
from django.utils import timezone
from prometheus_client.core import GaugeMetricFamily
from prometheus_client.registry import Collector

from ..models import Job
from ..states import ACTIVE, RUNNABLE, State

# The unfinished jobs, in pieces that each match the predicate of a partial index
# (migrations 0008, 0013, 0015): a scrape reads no finished row.
PIECES = (
    Q(state__in=RUNNABLE, concurrency_key__isnull=True),
    Q(state__in=RUNNABLE, concurrency_key__isnull=False),
    Q(state__in=ACTIVE),
    Q(state=State.WAITING),
)


class QueueGauges(Collector):
    """``dbq_jobs``, ``dbq_oldest_runnable_job_age_seconds``, ``dbq_workers_busy``.

    Grouped queries over the unfinished jobs only (finished rows, however many, are
    not read: ``PIECES``). ``using``: the database alias to read.
    """

    def __init__(self, using: str = "default") -> None:
        self.using = using

    def collect(self) -> Iterator[GaugeMetricFamily]:
        jobs = Job.objects.using(self.using).order_by()
        now = timezone.now()
        counts = GaugeMetricFamily(
            "dbq_jobs", "Unfinished jobs, by queue and state.", labels=["queue", "state"]
        )
        totals: dict[tuple[str, str], int] = {}
        for piece in PIECES:
            rows = jobs.filter(piece).values("queue_name", "state").annotate(count=Count("pk"))
            for row in rows:
                key = (row["queue_name"], row["state"])
                totals[key] = totals.get(key, 0) + row["count"]
        for (queue, state), count in sorted(totals.items()):
            counts.add_metric([queue, state], count)
        yield counts

        oldest = GaugeMetricFamily(
            "dbq_oldest_runnable_job_age_seconds",
            "Seconds the longest-waiting runnable job of each queue has waited "
            "(since it was created, or since its run_after came).",
            labels=["queue"],
        )
        due = Q(run_after__isnull=True) | Q(run_after__lte=now)
        first: dict[str, Any] = {}
        for piece in PIECES[:2]:  # the runnable ones, keyed or not
            waiting = jobs.filter(piece, due).values("queue_name")
            for row in waiting.annotate(since=Min(Coalesce(F("run_after"), F("created")))):
                queue = row["queue_name"]
                first[queue] = min(first.get(queue, row["since"]), row["since"])
        for queue, since in sorted(first.items()):
            oldest.add_metric([queue], seconds_between(since, now))
        yield oldest

        busy = GaugeMetricFamily(
            "dbq_workers_busy",
            "Worker processes holding at least one job, by queue.",
            labels=["queue"],
        )
        held = jobs.filter(state__in=ACTIVE).exclude(worker_id="").values("queue_name")
        for row in held.annotate(workers=Count("worker_id", distinct=True)):
            busy.add_metric([row["queue_name"]], row["workers"])
        yield busy


def seconds_between(start: Any, end: Any) -> float:
    return max((end - start).total_seconds(), 0.0)
