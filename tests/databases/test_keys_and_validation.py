"""Hardening (issue #9): unique keys held exactly while a job waits or runs, exact
comparison of names and keys on every database, bulk inserts that prepare values like
``create``, and jobs no worker could run refused at creation."""

import datetime
import warnings
import zoneinfo

import pytest
from django.db import IntegrityError, connection, transaction
from django.test import override_settings
from django.utils import timezone

from django_dbq.exceptions import DuplicateJob
from django_dbq.management.commands.worker import Worker
from django_dbq.models import Job, Schedule
from django_dbq.schedule import Scheduler
from tests.helpers import run_steps

pytestmark = [pytest.mark.database, pytest.mark.django_db]

WAITING_OR_RUNNING = ["NEW", "READY", "PROCESSING", "STOPPING"]
FINISHED = ["COMPLETE", "FAILED", "CANCELLED"]


# -- unique keys: held exactly while the job waits or runs ------------------------


def test_a_retried_job_holds_its_key_again():
    job = Job.objects.create(name="failing", unique_key="k")
    run_steps()
    job.refresh_from_db()
    assert job.state == "FAILED"
    job.retry()
    with pytest.raises(DuplicateJob) as caught:
        Job.objects.create(name="failing", unique_key="k")
    assert caught.value.existing_job == job
    assert Job.objects.count() == 1


@pytest.mark.parametrize("finish", ["run", "cancel"])
def test_retrying_a_job_whose_key_another_job_took_raises_and_changes_nothing(finish):
    old = Job.objects.create(name="failing", unique_key="k")
    if finish == "run":
        run_steps()
    else:
        old.cancel()
    old.refresh_from_db()
    before = Job.objects.filter(pk=old.pk).values().get()
    newer = Job.objects.create(name="failing", unique_key="k")
    with transaction.atomic():
        with pytest.raises(DuplicateJob, match="already waiting or running") as caught:
            old.retry()
        assert caught.value.existing_job == newer
        # The savepoint kept the caller's transaction usable.
        assert Job.objects.filter(state="NEW").count() == 1
    assert Job.objects.filter(pk=old.pk).values().get() == before
    assert old.state == before["state"]


@pytest.mark.parametrize("state", FINISHED)
def test_a_job_created_finished_does_not_hold_its_key(state):
    Job.objects.create(name="noop", unique_key="k", state=state)
    Job.objects.create(name="noop", unique_key="k", state=state)
    waiting = Job.objects.create(name="noop", unique_key="k")
    assert Job.objects.filter(unique_key="k").count() == 3
    with pytest.raises(DuplicateJob) as caught:
        Job.objects.create(name="noop", unique_key="k")
    assert caught.value.existing_job == waiting


@pytest.mark.parametrize("state", WAITING_OR_RUNNING)
def test_a_job_created_waiting_or_running_holds_its_key(state):
    first = Job.objects.create(name="noop", unique_key="k", state=state)
    for other in WAITING_OR_RUNNING:
        with pytest.raises(DuplicateJob) as caught:
            Job.objects.create(name="noop", unique_key="k", state=other)
        assert caught.value.existing_job == first
    Job.objects.create(name="noop", unique_key="k", state="COMPLETE")
    assert Job.objects.count() == 2


def test_a_finished_job_keeps_its_key_on_the_row():
    job = Job.objects.create(name="noop", unique_key="k")
    run_steps()
    job.refresh_from_db()
    assert (job.state, job.unique_key) == ("COMPLETE", "k")
    Job.objects.create(name="noop", unique_key="k")


def test_the_duplicate_reported_is_the_waiting_job_not_a_finished_one():
    # Finished, older and of higher priority: first in the model's ordering.
    Job.objects.create(name="noop", unique_key="k", state="COMPLETE", priority=9)
    waiting = Job.objects.create(name="noop", unique_key="k")
    with pytest.raises(DuplicateJob) as caught:
        Job.objects.create(name="noop", unique_key="k")
    assert caught.value.existing_job == waiting
    with pytest.raises(DuplicateJob) as caught:
        Job.objects.bulk_create([Job(name="noop", unique_key="k")])
    assert caught.value.existing_job == waiting


def test_the_database_refuses_two_waiting_rows_but_not_two_finished_ones():
    one, two = Job.objects.create(name="noop"), Job.objects.create(name="noop")
    Job.objects.filter(pk__in=[one.pk, two.pk]).update(unique_key="k", state="COMPLETE")
    Job.objects.filter(pk=one.pk).update(state="READY")
    with pytest.raises(IntegrityError), transaction.atomic():
        Job.objects.filter(pk=two.pk).update(state="PROCESSING")
    assert Job.objects.get(pk=two.pk).state == "COMPLETE"


@override_settings(
    DBQ_SCHEDULE={"single": {"job": "failing", "cron": "* * * * *", "unique_key": "one"}}
)
def test_a_keyed_schedule_skips_ticks_while_its_job_runs_and_not_once_it_failed():
    last_hour = timezone.now() - datetime.timedelta(hours=1)
    Schedule.objects.create(name="single", last_tick=last_hour)
    assert Scheduler().enqueue_due() == 1
    Job.objects.update(state="PROCESSING")
    Schedule.objects.update(last_tick=last_hour)
    assert Scheduler().enqueue_due() == 0  # the run holds the key
    Job.objects.update(state="READY")
    run_steps()
    assert Job.objects.get().state == "FAILED"
    Schedule.objects.update(last_tick=last_hour)
    assert Scheduler().enqueue_due() == 1  # the failed run keeps its key but holds it no more
    assert sorted(Job.objects.values_list("state", "unique_key")) == [
        ("FAILED", "one"),
        ("NEW", "one"),
    ]


# -- exact comparison of queue names and keys ------------------------------------


def test_a_worker_claims_only_jobs_of_its_exact_queue_name():
    others = [
        Job.objects.create(name="noop", queue_name=queue)
        for queue in ("Emails", "EMAILS", "emails ", "Emails ", "émails")
    ]
    mine = Job.objects.create(name="noop", queue_name="emails")
    assert list(Job.objects.to_process("emails")) == [mine]
    assert run_steps("emails") == 1
    worker = Worker("emails")
    worker._process_job()  # nothing left for it: claims nothing
    assert Job.objects.get(pk=mine.pk).state == "COMPLETE"
    assert {job.state for job in Job.objects.exclude(pk=mine.pk)} == {"NEW"}
    assert Job.get_queue_depths() == {job.queue_name: 1 for job in others}


def test_unique_keys_compare_exactly_in_create_and_bulk_create():
    Job.objects.create(name="noop", unique_key="site-1")
    Job.objects.create(name="noop", unique_key="Site-1")
    Job.objects.bulk_create(
        [Job(name="noop", unique_key=key) for key in ("SITE-1", "site-1 ", "sité-1")]
    )
    assert Job.objects.count() == 5
    with pytest.raises(DuplicateJob) as caught:
        Job.objects.bulk_create(
            [Job(name="noop", unique_key="a"), Job(name="noop", unique_key="Site-1")]
        )
    assert caught.value.existing_job.unique_key == "Site-1"
    assert Job.objects.count() == 5
    assert Job.objects.get(unique_key="site-1 ").unique_key == "site-1 "


# -- bulk inserts prepare every value as create() does ----------------------------


@override_settings(USE_TZ=True, TIME_ZONE="America/New_York")
def test_bulk_and_single_creates_store_the_same_moment_for_a_naive_datetime():
    naive = datetime.datetime(2030, 1, 2, 12, 30)
    expected = timezone.make_aware(naive, zoneinfo.ZoneInfo("America/New_York"))
    with pytest.warns(RuntimeWarning, match="naive datetime"):
        single = Job.objects.create(name="noop", run_after=naive)
    with pytest.warns(RuntimeWarning, match="naive datetime"):
        [bulk] = Job.objects.bulk_create([Job(name="noop", run_after=naive)])
    stored = dict(Job.objects.values_list("pk", "run_after"))
    assert stored[single.pk] == stored[bulk.pk] == expected


def test_bulk_create_stores_aware_datetimes_as_the_same_moment():
    moment = datetime.datetime(2030, 1, 2, 12, 30, tzinfo=zoneinfo.ZoneInfo("Asia/Tokyo"))
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        [job] = Job.objects.bulk_create([Job(name="noop", run_after=moment, created=moment)])
    stored = Job.objects.get(pk=job.pk)
    assert stored.run_after == stored.created == moment


# -- jobs no worker can run are refused at creation --------------------------------

BAD_QUEUE_NAMES = ["", "q" * 101, None, 5, b"default"]
BAD_PRIORITIES = [32768, -32769, 10**9, True, False, 1.5, "1", None]


def create_one(values):
    Job.objects.create(name="noop", **values)


def bulk_create_batch(values):
    Job.objects.bulk_create([Job(name="noop"), Job(name="noop", **values)])


def save_one(values):
    Job(name="noop", **values).save()


@pytest.mark.parametrize("insert", [create_one, bulk_create_batch, save_one])
@pytest.mark.parametrize("queue_name", BAD_QUEUE_NAMES)
def test_a_queue_name_no_worker_can_serve_is_refused_and_nothing_written(insert, queue_name):
    with pytest.raises(ValueError, match="queue_name"):
        insert({"queue_name": queue_name})
    assert not Job.objects.exists()


@pytest.mark.parametrize("insert", [create_one, bulk_create_batch, save_one])
@pytest.mark.parametrize("priority", BAD_PRIORITIES)
def test_a_priority_out_of_the_columns_range_is_refused_and_nothing_written(insert, priority):
    with pytest.raises(ValueError, match="priority"):
        insert({"priority": priority})
    assert not Job.objects.exists()


def move_to_an_unservable_queue(job):
    job.queue_name = ""


@override_settings(
    JOBS={
        "moved": {
            "tasks": ["tests.jobs.noop"],
            "creation_hook": "tests.databases.test_keys_and_validation.move_to_an_unservable_queue",
        }
    }
)
def test_what_a_creation_hook_leaves_is_checked_too():
    with pytest.raises(ValueError, match="queue_name"):
        Job.objects.create(name="moved")
    with pytest.raises(ValueError, match="queue_name"):
        Job.objects.bulk_create([Job(name="moved")])
    assert not Job.objects.exists()


def test_the_edges_of_the_valid_ranges_are_stored():
    Job.objects.create(name="noop", queue_name="q" * 100, priority=32767)
    Job.objects.bulk_create([Job(name="noop", queue_name="q", priority=-32768)])
    assert sorted(Job.objects.values_list("queue_name", "priority")) == [
        ("q", -32768),
        ("q" * 100, 32767),
    ]


def test_the_worker_refuses_the_same_queue_names():
    for queue_name in BAD_QUEUE_NAMES:
        with pytest.raises(ValueError, match="[Qq]ueue"):
            Worker([queue_name])


# -- the migration ------------------------------------------------------------------


def index_names() -> set[str]:
    with connection.cursor() as cursor:
        constraints = connection.introspection.get_constraints(cursor, Job._meta.db_table)
    return set(constraints)


def test_the_claim_indexes_survive_and_the_active_key_index_exists():
    names = index_names()
    assert {"dbq_job_runnable", "dbq_job_leased", "dbq_job_active_unique_key"} <= names
    assert "dbq_job_unique_key" not in names
