"""Recurring jobs: each tick of DBQ_SCHEDULE is enqueued once, however many workers run."""

import datetime
import threading

import pytest
from django.db import connection
from django.test import override_settings
from django.utils import timezone

from django_dbq.models import Job, Schedule
from django_dbq.schedule import ScheduleEntry, Scheduler, parse_schedule
from tests.helpers import run_steps

pytestmark = [pytest.mark.database, pytest.mark.django_db]

EVERY_MINUTE = {
    "minutely": {
        "job": "chain",
        "cron": "* * * * *",
        "workspace": {"input": 7},
        "queue_name": "reports",
        "priority": 3,
    }
}


def test_parse_schedule_reads_every_option():
    [entry], problems = parse_schedule(EVERY_MINUTE)
    assert problems == []
    assert entry == ScheduleEntry(
        name="minutely",
        job="chain",
        cron="* * * * *",
        workspace={"input": 7},
        queue_name="reports",
        priority=3,
    )
    [entry], _ = parse_schedule({"s": {"job": "noop", "cron": "0 3 * * *"}})
    assert (entry.queue_name, entry.priority, entry.workspace) == ("default", 0, {})


def test_ticks_follow_the_cron_expression():
    entry = ScheduleEntry(name="s", job="noop", cron="*/15 * * * *")
    now = datetime.datetime(2026, 1, 1, 10, 20, 5, tzinfo=datetime.UTC)
    assert entry.previous_tick(now) == now.replace(minute=15, second=0)
    assert entry.next_tick(now) == now.replace(minute=30, second=0)


@override_settings(DBQ_SCHEDULE=EVERY_MINUTE)
def test_a_new_schedule_starts_at_its_next_tick():
    assert Scheduler().enqueue_due() == 0
    assert not Job.objects.exists()
    row = Schedule.objects.get(name="minutely")
    assert row.last_tick <= timezone.now()
    assert row.last_tick.second == 0 and row.last_tick.microsecond == 0


@override_settings(DBQ_SCHEDULE=EVERY_MINUTE)
def test_a_due_tick_enqueues_one_job_whichever_worker_sees_it():
    Scheduler().enqueue_due()
    row = Schedule.objects.get()
    Schedule.objects.update(last_tick=row.last_tick - datetime.timedelta(minutes=1))
    first, second = Scheduler(), Scheduler()
    assert first.enqueue_due() == 1
    assert first.enqueue_due() == 0  # same tick, same worker
    assert second.enqueue_due() == 0  # same tick, another worker: the database says no
    job = Job.objects.get()
    assert (job.name, job.queue_name, job.priority) == ("chain", "reports", 3)
    assert job.workspace == {"input": 7} and job.next_task == "tests.jobs.step_one"
    assert Schedule.objects.get().last_tick == row.last_tick


@override_settings(DBQ_SCHEDULE=EVERY_MINUTE)
def test_ticks_missed_while_no_worker_ran_are_not_replayed():
    Schedule.objects.create(name="minutely", last_tick=timezone.now() - datetime.timedelta(days=3))
    assert Scheduler().enqueue_due() == 1
    assert Scheduler().enqueue_due() == 0
    assert Job.objects.count() == 1
    assert timezone.now() - Schedule.objects.get().last_tick < datetime.timedelta(minutes=2)


@override_settings(DBQ_SCHEDULE={**EVERY_MINUTE, "broken": {"job": "missing", "cron": "* * * * *"}})
def test_a_broken_entry_is_skipped_and_the_others_still_run():
    Schedule.objects.create(name="minutely", last_tick=timezone.now() - datetime.timedelta(hours=1))
    assert Scheduler().enqueue_due() == 1
    assert not Schedule.objects.filter(name="broken").exists()


@override_settings(
    DBQ_SCHEDULE={"single": {"job": "noop", "cron": "* * * * *", "unique_key": "single-run"}}
)
def test_a_schedule_with_a_unique_key_skips_ticks_while_its_last_job_waits():
    last_hour = timezone.now() - datetime.timedelta(hours=1)
    Schedule.objects.create(name="single", last_tick=last_hour)
    assert Scheduler().enqueue_due() == 1
    job = Job.objects.get()
    assert job.unique_key == "single-run"
    Schedule.objects.update(last_tick=last_hour)  # the next tick comes while the job waits
    assert Scheduler().enqueue_due() == 0
    assert Job.objects.count() == 1
    assert Schedule.objects.get().last_tick > last_hour  # that tick is used up, not retried
    run_steps()
    Schedule.objects.update(last_tick=last_hour)
    assert Scheduler().enqueue_due() == 1  # the job finished: the key is free again
    assert Job.objects.filter(state="NEW").count() == 1


@override_settings(
    JOBS={
        "bad_hook": {"tasks": ["tests.jobs.noop"], "creation_hook": "tests.jobs.raising_hook"},
        "noop": ["tests.jobs.noop"],
    },
    DBQ_SCHEDULE={
        "a-broken": {"job": "bad_hook", "cron": "* * * * *"},
        "b-fine": {"job": "noop", "cron": "* * * * *", "workspace": {"nested": {"n": 1}}},
    },
)
def test_a_schedule_whose_job_cannot_be_created_does_not_stop_the_others(caplog):
    last_hour = timezone.now() - datetime.timedelta(hours=1)
    Schedule.objects.create(name="a-broken", last_tick=last_hour)
    Schedule.objects.create(name="b-fine", last_tick=last_hour)
    scheduler = Scheduler()
    assert scheduler.enqueue_due() == 1
    assert "Schedule a-broken: could not enqueue its job" in caplog.text
    assert Schedule.objects.get(name="a-broken").last_tick == last_hour  # rolled back
    job = Job.objects.get()
    assert job.name == "noop" and job.workspace == {"nested": {"n": 1}}
    assert scheduler.enqueue_due() == 0  # this worker waits for the next tick


@pytest.mark.django_db(transaction=True)
def test_concurrent_schedulers_enqueue_each_tick_exactly_once():
    entry = ScheduleEntry(name="race", job="noop", cron="* * * * *")
    start = entry.previous_tick(timezone.now()) - datetime.timedelta(minutes=10)
    Schedule.objects.create(name="race", last_tick=start)
    threads = 6
    for minute in range(1, 4):
        tick = start + datetime.timedelta(minutes=minute)
        barrier, counts = threading.Barrier(threads), []

        def enqueue(tick=tick, barrier=barrier, counts=counts):
            try:
                barrier.wait()
                counts.append(Scheduler().enqueue_tick(entry, tick))
            finally:
                connection.close()

        workers = [threading.Thread(target=enqueue) for _ in range(threads)]
        for worker in workers:
            worker.start()
        for worker in workers:
            worker.join()
        assert sorted(counts) == [0] * (threads - 1) + [1], (minute, counts)
    assert Job.objects.filter(name="noop").count() == 3


@override_settings(DBQ_SCHEDULE=EVERY_MINUTE)
def test_the_maintenance_thread_wakes_at_the_next_tick_not_an_interval_later(monkeypatch):
    """Recurring jobs used to be enqueued 2.5 to 4.5 s after their minute."""
    from django_dbq import schedule
    from django_dbq.worker.maintenance import Maintenance

    now = datetime.datetime(2026, 1, 1, 10, 20, 57, tzinfo=datetime.UTC)
    monkeypatch.setattr(schedule, "_now", lambda: now)
    maintenance = Maintenance("default", lease_seconds=60)
    assert maintenance.next_delay(5.0) == 5.0  # no schedule seen yet
    maintenance.scheduler.enqueue_due()
    assert maintenance.scheduler.seconds_until_due() == 3.0
    assert maintenance.next_delay(5.0) == 3.0  # wakes at 10:21:00, the tick
    assert maintenance.next_delay(1.0) == 1.0
