"""The Job model's public API: create, the manager vocabulary, and the 3.x helpers."""

import datetime
import re
import sys
import uuid

import pytest
from django.db import connection
from django.test import TestCase, override_settings
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

from django_dbq.exceptions import InvalidWorkspace, UnknownJob
from django_dbq.management.commands.worker import Worker
from django_dbq.models import Job
from django_dbq.tasks import get_next_task_name

pytestmark = [pytest.mark.database, pytest.mark.django_db]

CHAIN = ["tests.jobs.step_one", "tests.jobs.step_two", "tests.jobs.step_three"]


def ago(**delta):
    return timezone.now() - datetime.timedelta(**delta)


# -- Job.objects.create --------------------------------------------------------


def test_create_sets_defaults_and_the_first_task():
    job = Job.objects.create(name="chain")
    stored = Job.objects.get(pk=job.pk)
    assert stored.state == Job.STATES.NEW
    assert stored.next_task == CHAIN[0]
    assert stored.workspace == {}
    assert stored.queue_name == "default"
    assert stored.priority == 0
    assert stored.run_after is None
    assert stored.attempts == 0 and stored.max_attempts == 1
    assert stored.created is not None and stored.modified is not None


def test_id_is_a_uuid_assigned_in_python_before_the_insert():
    job = Job(name="noop")
    assigned = job.pk
    assert isinstance(assigned, uuid.UUID)
    job.save()
    assert Job.objects.get(pk=assigned).name == "noop"


def test_created_is_editable_after_the_insert():
    job = Job.objects.create(name="noop")
    earlier = ago(days=3)
    job.created = earlier
    job.save()
    assert Job.objects.get(pk=job.pk).created == earlier


def test_modified_changes_on_every_save_and_the_default_ordering_is_the_claim_order():
    job = Job.objects.create(name="noop", created=ago(hours=1))
    first = Job.objects.get(pk=job.pk).modified
    job.priority = 2
    job.save()
    assert Job.objects.get(pk=job.pk).modified > first
    low = Job.objects.create(name="noop", priority=-1)
    newer = Job.objects.create(name="noop", priority=2)
    assert list(Job.objects.all()) == [job, newer, low]


def test_create_stores_queue_priority_run_after_and_workspace():
    later = timezone.now() + datetime.timedelta(hours=1)
    job = Job.objects.create(
        name="noop", queue_name="emails", priority=-5, run_after=later, workspace={"a": [1, "x"]}
    )
    stored = Job.objects.get(pk=job.pk)
    assert (stored.queue_name, stored.priority, stored.run_after) == ("emails", -5, later)
    assert stored.workspace == {"a": [1, "x"]}


def test_create_with_an_unknown_name_raises_and_inserts_nothing():
    with pytest.raises(UnknownJob, match="no_such_job"):
        Job.objects.create(name="no_such_job")
    assert not Job.objects.exists()
    assert issubclass(UnknownJob, KeyError)  # 3.x callers catch KeyError


@pytest.mark.parametrize(
    "workspace", [{"when": object()}, {"n": float("nan")}, ["not", "a", "dict"], "text"]
)
def test_create_with_a_workspace_that_is_not_a_json_object_raises_before_writing(workspace):
    with CaptureQueriesContext(connection) as queries, pytest.raises(InvalidWorkspace):
        Job.objects.create(name="noop", workspace=workspace)
    assert not [q for q in queries.captured_queries if "INSERT" in q["sql"].upper()]
    assert not Job.objects.exists()


def test_creation_hook_edits_the_workspace_before_the_insert():
    job = Job.objects.create(name="hooked", workspace={"input": 1})
    assert Job.objects.get(pk=job.pk).workspace == {"input": 1, "created_by_hook": True}


@override_settings(
    JOBS={"bad_hook": {"tasks": ["tests.jobs.noop"], "creation_hook": "tests.jobs.raising_hook"}}
)
def test_a_creation_hook_that_raises_reaches_the_caller_and_no_row_is_written():
    with pytest.raises(RuntimeError, match="the hook broke"):
        Job.objects.create(name="bad_hook")
    assert not Job.objects.exists()


def test_state_given_to_create_is_honoured():
    ready = Job.objects.create(name="noop", state=Job.STATES.READY)
    done = Job.objects.create(name="noop", state=Job.STATES.COMPLETE)
    assert Job.objects.get(pk=ready.pk).state == "READY"
    assert Job.objects.get(pk=done.pk).state == "COMPLETE"


def test_states_keep_the_3x_values():
    assert [value for value, _ in Job.STATES.choices][:6] == [
        "NEW",
        "READY",
        "PROCESSING",
        "STOPPING",
        "FAILED",
        "COMPLETE",
    ]


def test_creating_a_job_imports_none_of_its_task_code():
    sys.modules.pop("tests.probe_tasks", None)
    job = Job.objects.create(name="probe")
    Job.objects.bulk_create([Job(name="probe"), Job(name="probe")])
    assert "tests.probe_tasks" not in sys.modules
    assert Job.objects.get(pk=job.pk).next_task == "tests.probe_tasks.run"


def test_bulk_create_prepares_every_job_like_create():
    jobs = Job.objects.bulk_create([Job(name="hooked"), Job(name="chain", workspace={"x": 1})])
    stored = {job.name: job for job in Job.objects.filter(pk__in=[j.pk for j in jobs])}
    assert stored["hooked"].workspace == {"created_by_hook": True}
    assert stored["hooked"].next_task == "tests.jobs.step_one"
    assert stored["chain"].workspace == {"x": 1}


def test_bulk_create_with_an_unknown_name_inserts_nothing():
    with pytest.raises(UnknownJob):
        Job.objects.bulk_create([Job(name="noop"), Job(name="missing")])
    assert not Job.objects.exists()


@pytest.mark.parametrize("key", ["", "k" * 201, 12])
def test_an_invalid_unique_key_is_refused_before_writing(key):
    with pytest.raises(ValueError, match="unique_key"):
        Job.objects.create(name="noop", unique_key=key)
    assert not Job.objects.exists()


# -- manager vocabulary ---------------------------------------------------------


def test_to_process_lists_runnable_jobs_of_the_queue_by_priority_then_age():
    old_low = Job.objects.create(name="noop", queue_name="q", created=ago(hours=3))
    new_high = Job.objects.create(name="noop", queue_name="q", priority=5)
    old_high = Job.objects.create(name="noop", queue_name="q", priority=5, created=ago(hours=1))
    ready = Job.objects.create(name="noop", queue_name="q", state="READY", created=ago(hours=2))
    due = Job.objects.create(name="noop", queue_name="q", run_after=ago(seconds=1), priority=-1)
    # Not runnable: another queue, in the future, claimed or finished.
    Job.objects.create(name="noop", queue_name="other")
    Job.objects.create(
        name="noop", queue_name="q", run_after=timezone.now() + datetime.timedelta(hours=1)
    )
    for state in ("PROCESSING", "STOPPING", "FAILED", "COMPLETE", "CANCELLED"):
        Job.objects.create(name="noop", queue_name="q", state=state, priority=9)
    assert list(Job.objects.to_process("q")) == [old_high, new_high, old_low, ready, due]


def test_to_process_defaults_to_the_default_queue():
    job = Job.objects.create(name="noop")
    Job.objects.create(name="noop", queue_name="other")
    assert list(Job.objects.to_process()) == [job]


def test_get_ready_or_none_returns_the_next_job_without_claiming_it():
    assert Job.objects.get_ready_or_none("q") is None
    Job.objects.create(name="noop", queue_name="q")
    first = Job.objects.create(name="noop", queue_name="q", priority=1)
    assert Job.objects.get_ready_or_none("q") == first
    assert Job.objects.get(pk=first.pk).state == "NEW"
    assert Job.objects.get_ready_or_none("elsewhere") is None


def test_delete_old_deletes_finished_jobs_older_than_the_limit_and_keeps_the_rest():
    old = ago(hours=30)
    finished = [
        Job.objects.create(name="noop", state=state, created=old)
        for state in ("COMPLETE", "FAILED", "CANCELLED", "STOPPING")
    ]
    kept = [
        Job.objects.create(name="noop", state=state, created=old)
        for state in ("NEW", "READY", "PROCESSING")
    ]
    kept.append(Job.objects.create(name="noop", state="COMPLETE", created=ago(hours=2)))
    held = Job.objects.create(
        name="noop",
        state="STOPPING",
        created=old,
        lease_expires_at=timezone.now() + datetime.timedelta(minutes=5),
    )
    assert Job.objects.delete_old() == len(finished)
    assert set(Job.objects.values_list("pk", flat=True)) == {job.pk for job in [*kept, held]}


def test_delete_old_with_hours_zero_deletes_every_finished_job():
    Job.objects.create(name="noop", state="COMPLETE")
    waiting = Job.objects.create(name="noop")
    assert Job.objects.delete_old(hours=0) == 1
    assert list(Job.objects.all()) == [waiting]


def test_delete_old_works_in_batches():
    Job.objects.bulk_create(
        [Job(name="noop", state="COMPLETE", created=ago(days=2)) for _ in range(5)]
    )
    with CaptureQueriesContext(connection) as queries:
        assert Job.objects.delete_old(batch_size=2) == 5
    table = Job._meta.db_table
    deletes = [
        q for q in queries.captured_queries if re.match(rf"DELETE FROM\W+{table}\W", q["sql"])
    ]
    assert len(deletes) == 3
    assert not Job.objects.exists()


@pytest.mark.parametrize("batch_size", [0, -5, 2.5, True])
def test_delete_old_refuses_a_bad_batch_size(batch_size):
    Job.objects.create(name="noop", state="COMPLETE", created=ago(days=2))
    with pytest.raises(ValueError, match="batch_size"):
        Job.objects.delete_old(batch_size=batch_size)
    assert Job.objects.count() == 1


def test_delete_old_respects_a_filtered_queryset():
    Job.objects.create(name="noop", state="COMPLETE", created=ago(days=2))
    kept = Job.objects.create(name="noop", state="COMPLETE", created=ago(days=2), queue_name="k")
    assert Job.objects.exclude(queue_name="k").delete_old() == 1
    assert list(Job.objects.all()) == [kept]


@pytest.mark.parametrize("hours", [-1, "24", True, float("nan"), float("inf")])
def test_delete_old_refuses_a_bad_number_of_hours(hours):
    Job.objects.create(name="noop", state="COMPLETE", created=ago(days=2))
    with pytest.raises(ValueError):
        Job.objects.delete_old(hours=hours)
    assert Job.objects.count() == 1


def test_get_queue_depths_counts_new_and_ready_jobs_per_queue():
    Job.objects.create(name="noop")
    Job.objects.create(name="noop", state="READY")
    Job.objects.create(
        name="noop", queue_name="b", run_after=timezone.now() + datetime.timedelta(hours=1)
    )
    Job.objects.create(name="noop", queue_name="b")
    Job.objects.create(name="noop", queue_name="c", state="COMPLETE")
    Job.objects.create(name="noop", queue_name="c", state="PROCESSING")
    assert Job.get_queue_depths() == {"default": 2, "b": 2}
    assert Job.get_queue_depths(exclude_future_jobs=True) == {"default": 2, "b": 1}


def test_get_next_task_name_walks_the_chain():
    assert get_next_task_name("chain") == CHAIN[0]
    assert get_next_task_name("chain", CHAIN[0]) == CHAIN[1]
    assert get_next_task_name("chain", CHAIN[2]) is None
    with pytest.raises(UnknownJob):
        get_next_task_name("missing")


def test_update_next_task_advances_to_empty_after_the_last():
    job = Job.objects.create(name="chain")
    seen = [job.next_task]
    for _ in range(3):
        job.update_next_task()
        seen.append(job.next_task)
    assert seen == [*CHAIN, ""]


# -- Worker._process_job inside Django's TestCase ------------------------------


class ProcessJobInsideTestCase(TestCase):
    """Existing suites call ``Worker._process_job()`` inside TestCase's transaction."""

    def test_each_call_runs_one_step_and_the_job_completes(self):
        job = Job.objects.create(name="chain", workspace={"input": 1})
        worker = Worker("default", 0)
        worker._process_job()
        job.refresh_from_db()
        assert (job.state, job.next_task, job.workspace) == (
            "READY",
            CHAIN[1],
            {"input": 1, "one": 2},
        )
        assert worker.current_job is None
        worker._process_job()
        worker._process_job()
        job.refresh_from_db()
        assert job.state == "COMPLETE" and job.next_task == ""
        assert job.workspace == {"input": 1, "one": 2, "two": 4, "three": 7}

    def test_a_failing_task_fails_the_job_and_runs_the_failure_hook(self):
        job = Job.objects.create(name="failing")
        Worker("default", 0)._process_job()
        job.refresh_from_db()
        assert job.state == "FAILED"
        assert "ValueError: task went wrong" in job.error
        assert "Traceback" in job.error
        assert job.workspace == {"failure_hook": "ValueError('task went wrong')"}

    def test_hooks_run_around_every_task(self):
        job = Job.objects.create(name="hooked")
        worker = Worker("default", 0)
        worker._process_job()
        worker._process_job()
        job.refresh_from_db()
        assert job.state == "COMPLETE"
        assert job.workspace["pre"] == ["tests.jobs.step_one", "tests.jobs.step_two"]
        # As in django-db-queue 3.x, the post-task hook sees the step that follows.
        assert job.workspace["post"] == ["tests.jobs.step_two", ""]

    def test_it_only_runs_jobs_of_its_queue_and_does_nothing_when_empty(self):
        other = Job.objects.create(name="noop", queue_name="other")
        Worker("default", 0)._process_job()
        assert Job.objects.get(pk=other.pk).state == "NEW"


def test_state_in_writes_the_states_as_literals_so_that_partial_indexes_serve_it():
    from django_dbq.states import RUNNABLE

    runnable = Job.objects.filter(state__in=RUNNABLE, concurrency_key__isnull=True)
    sql, params = runnable.values("queue_name").query.sql_with_params()
    assert "IN ('NEW', 'READY')" in sql
    assert not {"NEW", "READY"} & {str(param) for param in params}
    if connection.vendor == "sqlite":
        # With bound parameters SQLite cannot match the index's predicate: a full scan.
        with connection.cursor() as cursor:
            cursor.execute(f"EXPLAIN QUERY PLAN {sql}", params)
            assert "dbq_job_runnable" in str(cursor.fetchall())
    # Anything outside the vocabulary stays a parameter, as ever.
    odd = Job.objects.filter(state__in=["NEW", "x') OR ('1'='1"])
    sql, params = odd.query.sql_with_params()
    assert "x') OR ('1'='1" in [str(param) for param in params]
    Job.objects.create(name="noop")
    assert odd.count() == 1
    assert Job.objects.filter(state__in=RUNNABLE).count() == 1
