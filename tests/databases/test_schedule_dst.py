"""Recurring jobs across daylight-saving changes (``USE_TZ = True``), driven by chosen times.

America/New_York, 2026: the clocks go back on 1 November at 06:00 UTC (02:00 EDT
becomes 01:00 EST, so 01:00-01:59 comes twice) and forward on 8 March at 07:00 UTC
(02:00 EST becomes 03:00 EDT, so 02:00-02:59 does not exist).
"""

import datetime

import pytest
from django.conf import settings
from django.test import override_settings
from django.utils import timezone

from django_dbq import schedule
from django_dbq.models import Job, Schedule
from django_dbq.schedule import ScheduleEntry, Scheduler, first_occurrence, is_interval

pytestmark = [pytest.mark.database, pytest.mark.django_db]
# With USE_TZ = False times are naive wall-clock times: a repeated one is simply equal.
needs_tz = pytest.mark.skipif(not settings.USE_TZ, reason="drives the scheduler with aware times")

NEW_YORK = "America/New_York"
UTC = datetime.UTC


def utc(month: int, day: int, hour: int, minute: int) -> datetime.datetime:
    return datetime.datetime(2026, month, day, hour, minute, tzinfo=UTC)


def drive(monkeypatch, start: datetime.datetime, end: datetime.datetime) -> None:
    """Run the schedulers of two workers once a minute from ``start`` to ``end`` (UTC).

    One worker keeps its scheduler (and so its memory of the next tick); the other
    starts afresh at every minute, as a newly started worker would.
    """
    clock = {"now": start}
    monkeypatch.setattr(schedule, "_now", lambda: timezone.localtime(clock["now"]))
    steady = Scheduler()
    while clock["now"] <= end:
        steady.enqueue_due()
        Scheduler().enqueue_due()
        clock["now"] += datetime.timedelta(minutes=1)


def enqueued() -> int:
    return Job.objects.count()


@needs_tz
@override_settings(TIME_ZONE=NEW_YORK, DBQ_SCHEDULE={"s": {"job": "noop", "cron": "30 1 * * *"}})
def test_a_repeated_time_of_day_runs_once_when_the_clocks_go_back(monkeypatch):
    drive(monkeypatch, utc(11, 1, 4, 0), utc(11, 1, 8, 0))  # 00:00 EDT to 03:00 EST
    assert enqueued() == 1
    # The tick kept is the first 01:30 (EDT, 05:30 UTC), not the second (EST, 06:30 UTC).
    assert Schedule.objects.get(name="s").last_tick == utc(11, 1, 5, 30)
    drive(monkeypatch, utc(11, 2, 6, 0), utc(11, 2, 7, 0))  # the next day: as usual
    assert enqueued() == 2
    assert Schedule.objects.get(name="s").last_tick == utc(11, 2, 6, 30)


@needs_tz
@override_settings(TIME_ZONE=NEW_YORK, DBQ_SCHEDULE={"s": {"job": "noop", "cron": "30 1 * * *"}})
def test_a_worker_starting_in_the_repeated_hour_runs_the_missed_time_once(monkeypatch):
    # No worker ran during the first 01:00-01:59 (EDT); one starts at 01:00 EST and
    # enqueues the missed 01:30 at once; the second 01:30 is the same time of day.
    Schedule.objects.create(name="s", last_tick=utc(10, 31, 5, 30))
    drive(monkeypatch, utc(11, 1, 6, 0), utc(11, 1, 8, 0))
    assert enqueued() == 1
    assert Schedule.objects.get(name="s").last_tick == utc(11, 1, 5, 30)


@needs_tz
@override_settings(TIME_ZONE=NEW_YORK, DBQ_SCHEDULE={"s": {"job": "noop", "cron": "*/30 * * * *"}})
def test_an_interval_schedule_runs_every_tick_of_the_repeated_hour(monkeypatch):
    drive(monkeypatch, utc(11, 1, 4, 1), utc(11, 1, 8, 1))
    # 04:30, 05:00, 05:30 (01:30 EDT), 06:00 (01:00 EST), 06:30, 07:00, 07:30, 08:00 UTC.
    assert enqueued() == 8


@needs_tz
@override_settings(TIME_ZONE=NEW_YORK, DBQ_SCHEDULE={"s": {"job": "noop", "cron": "30 2 * * *"}})
def test_a_time_that_does_not_exist_runs_once_when_the_clocks_jump(monkeypatch):
    drive(monkeypatch, utc(3, 8, 5, 0), utc(3, 8, 10, 0))  # 00:00 EST to 06:00 EDT
    assert enqueued() == 1
    assert Schedule.objects.get(name="s").last_tick == utc(3, 8, 7, 0)  # 03:00 EDT
    drive(monkeypatch, utc(3, 9, 6, 0), utc(3, 9, 7, 0))  # the next day: 02:30 EDT
    assert enqueued() == 2
    assert Schedule.objects.get(name="s").last_tick == utc(3, 9, 6, 30)


def test_interval_schedules_are_those_with_a_wildcard_minute_or_hour():
    assert is_interval("*/15 * * * *") and is_interval("0 * * * *") and is_interval("* 1 * * *")
    assert is_interval("@hourly")
    assert not is_interval("30 1 * * *") and not is_interval("0 2 1 * *")
    assert not is_interval("@daily")


def test_first_occurrence_of_a_repeated_local_time():
    with timezone.override(NEW_YORK):
        second = timezone.localtime(utc(11, 1, 6, 30))  # 01:30 EST, the second 01:30
        first = timezone.localtime(utc(11, 1, 5, 30))  # 01:30 EDT
        assert first_occurrence(second) == first
        assert first_occurrence(first) == first
        plain = timezone.localtime(utc(11, 2, 6, 30))
        assert first_occurrence(plain) == plain
    naive = datetime.datetime(2026, 11, 1, 1, 30, fold=1)
    assert first_occurrence(naive) == naive
    entry = ScheduleEntry(name="s", job="noop", cron="30 1 * * *")
    assert entry.previous_tick(second) == first
