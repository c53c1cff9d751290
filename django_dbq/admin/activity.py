"""What the queues did lately, from the job table itself: the data of the overview's charts.

Finished jobs keep their timestamps until ``delete_old_jobs`` removes them, so the
last hour and the last day can be read back from the rows: per queue, jobs completed
and failed per minute (last hour) and per hour (last day), the wait before the start
of the jobs finished in the last hour (percentiles), and the job names that took the
most run time in the last day. Every query reads the jobs finished in its window
through the ``finished_at`` index (migration 0015), never the whole table; on
MariaDB/MySQL that index covers the throughput and busiest queries (migration 0016:
they read only its columns, through ``backends.expressions``).
"""

from __future__ import annotations

import datetime
import math
from dataclasses import dataclass, field

from django.db.models import Case, Count, IntegerField, QuerySet, Sum, Value, When
from django.db.models.functions import Coalesce
from django.utils import timezone

from ..backends.expressions import FinishedState, RunSeconds
from ..states import State

HOUR = datetime.timedelta(hours=1)
DAY = datetime.timedelta(days=1)
# The wait percentiles read at most this many of the last hour's jobs (the latest).
WAIT_SAMPLE = 20_000
PERCENTILES = (50, 90, 99)
BUSIEST = 10
ENDS = (State.COMPLETE.value, State.FAILED.value)


@dataclass
class Series:
    """Completed and failed counts of one queue, one bucket after another (oldest first)."""

    starts: list[datetime.datetime]
    completed: list[int] = field(default_factory=list)
    failed: list[int] = field(default_factory=list)


def buckets(now: datetime.datetime, span: datetime.timedelta, step: datetime.timedelta):
    """The starts of the ``step``-long buckets covering ``span`` up to ``now`` (oldest first)."""
    # The last bucket starts on a minute or hour of the current time zone; the others
    # are counted back from it in UTC, so that a daylight-saving change moves no bucket.
    local = timezone.localtime(now) if timezone.is_aware(now) else now
    last = local.replace(second=0, microsecond=0)
    if step >= HOUR:
        last = last.replace(minute=0)
    if timezone.is_aware(last):
        last = last.astimezone(datetime.UTC)
    count = int(span / step)
    return [last - step * (count - 1 - index) for index in range(count)]


def throughput(
    jobs: QuerySet, now: datetime.datetime, span: datetime.timedelta, step: datetime.timedelta
) -> dict[str, Series]:
    """Per queue, jobs completed and failed in each ``step`` of the last ``span``."""
    starts = buckets(now, span, step)
    ended = (
        jobs.order_by()
        .filter(finished_at__gte=starts[0], finished_at__lte=now)
        .annotate(finished_state=FinishedState())
        .filter(finished_state__in=ENDS)
    )
    # The bucket's number by plain comparisons with its bounds (newest first): no per-row
    # date function, which SQLite runs in Python and MySQL converts time zones for.
    newest_first = [
        When(finished_at__gte=start, then=Value(index))
        for index, start in reversed(list(enumerate(starts)))
    ]
    bucket = Case(*newest_first, output_field=IntegerField())
    rows = ended.annotate(bucket=bucket).values("queue_name", "finished_state", "bucket")
    counts: dict[tuple[str, str, int], int] = {}
    for row in rows.annotate(count=Count("pk")):
        key = (row["queue_name"], row["finished_state"], row["bucket"])
        counts[key] = counts.get(key, 0) + row["count"]
    series: dict[str, Series] = {}
    for queue in sorted({queue for queue, _, _ in counts}):
        one = series[queue] = Series(starts)
        for index in range(len(starts)):
            one.completed.append(counts.get((queue, State.COMPLETE.value, index), 0))
            one.failed.append(counts.get((queue, State.FAILED.value, index), 0))
    return series


def empty_series(
    now: datetime.datetime, span: datetime.timedelta, step: datetime.timedelta
) -> Series:
    starts = buckets(now, span, step)
    return Series(starts, [0] * len(starts), [0] * len(starts))


def wait_percentiles(jobs: QuerySet, now: datetime.datetime) -> dict[str, dict[int, float]]:
    """Per queue, percentiles of the seconds the last hour's finished jobs waited to start."""
    recent = jobs.order_by("-finished_at").filter(
        finished_at__gte=now - HOUR, finished_at__lte=now, started_at__isnull=False
    )
    waits: dict[str, list[float]] = {}
    rows = recent.values_list("queue_name", "started_at", "run_after", "created")[:WAIT_SAMPLE]
    for queue, started, run_after, created in rows:
        waited = (started - (run_after or created)).total_seconds()
        waits.setdefault(queue, []).append(max(waited, 0.0))
    return {queue: percentiles(sorted(values)) for queue, values in sorted(waits.items())}


def percentiles(ordered: list[float]) -> dict[int, float]:
    """The nearest-rank percentiles of ``ordered`` (ascending, not empty)."""
    last = len(ordered) - 1
    return {
        p: ordered[min(last, max(0, math.ceil(p / 100 * len(ordered)) - 1))] for p in PERCENTILES
    }


def busiest(jobs: QuerySet, now: datetime.datetime) -> list[tuple[str, float, int]]:
    """The job names with the most run time (start of the last run to its end) in the last
    day: (name, seconds, runs), most first."""
    ran = jobs.order_by().filter(finished_at__gte=now - DAY, finished_at__lte=now)
    # Counted and summed where the run time is known (NULL without a start), without a
    # filter on started_at: MariaDB's index holds the run time, not the start.
    rows = (
        ran.annotate(took=RunSeconds())
        .values("name")
        .annotate(total=Coalesce(Sum("took"), 0.0), runs=Count("took"))
        .order_by("-total", "name")
    )
    ranked = (row for row in rows if row["runs"])
    return [(row["name"], round(row["total"], 3), row["runs"]) for row in ranked][:BUSIEST]
