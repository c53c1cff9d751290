"""Concurrency keys (``Job.concurrency_key``): creation, the claim, the indexes, pruning.

Real workers hammering one hot key are in tests/processes/test_concurrency_keys.py.
"""

import threading

import pytest
from django.db import connection, connections, transaction

from django_dbq import engine
from django_dbq.keys import ConcurrencyKey
from django_dbq.models import Job
from tests.helpers import claimer

pytestmark = [pytest.mark.database, pytest.mark.django_db(transaction=True)]


def complete(job: Job) -> None:
    assert engine.checkpoint(job, "")  # its last step done: COMPLETE, the key's slot free


def test_a_key_takes_its_limit_from_the_job_then_the_definition_then_one():
    assert Job.objects.create(name="noop", concurrency_key="a").concurrency_limit == 1
    assert Job.objects.create(name="per_account", concurrency_key="a").concurrency_limit == 2
    job = Job.objects.create(name="per_account", concurrency_key="a", concurrency_limit=5)
    assert Job.objects.get(pk=job.pk).concurrency_limit == 5
    assert Job.objects.create(name="noop").concurrency_limit is None


@pytest.mark.parametrize(
    "values",
    [
        {"concurrency_key": ""},
        {"concurrency_key": "k" * 201},
        {"concurrency_key": 42},
        {"concurrency_key": "a", "concurrency_limit": 0},
        {"concurrency_key": "a", "concurrency_limit": True},
        {"concurrency_key": "a", "concurrency_limit": "2"},
        {"concurrency_limit": 2},
    ],
)
def test_a_bad_key_or_limit_is_refused_and_nothing_is_written(values):
    with pytest.raises(ValueError, match="concurrency_"):
        Job.objects.create(name="noop", **values)
    with pytest.raises(ValueError, match="concurrency_"):
        Job.objects.bulk_create([Job(name="noop"), Job(name="noop", **values)])
    assert not Job.objects.exists()


def test_the_one_statement_claim_never_takes_a_keyed_job():
    keyed = Job.objects.create(name="noop", concurrency_key="a", priority=5)
    plain = Job.objects.create(name="noop")
    worker = claimer()
    plan = worker.backend.claim_plan(connection, Job, ["default"])
    jobs = worker.backend.claim(connection, plan, _claim(worker), 10)
    assert [job.pk for job in jobs] == [plain.pk]
    assert Job.objects.get(pk=keyed.pk).state == "NEW"


def _claim(worker):
    import datetime
    import uuid

    from django.utils import timezone

    from django_dbq import backends

    now = timezone.now()
    expires = now + datetime.timedelta(seconds=60)
    token_field, time_field = Job._meta.get_field("lease_token"), Job._meta.get_field("modified")
    token = uuid.uuid4()
    return backends.Claim(
        token=token,
        expires=expires,
        now=now,
        worker_id="test",
        prepared_token=token_field.get_db_prep_value(token, connection),
        prepared_expires=time_field.get_db_prep_value(expires, connection),
        prepared_now=time_field.get_db_prep_value(now, connection),
    )


def test_a_key_runs_at_most_its_limit_and_its_slot_comes_back_when_one_ends():
    first, second, third = (
        Job.objects.create(name="per_account", concurrency_key="acct-1") for _ in range(3)
    )
    other = Job.objects.create(name="noop", concurrency_key="acct-2")
    plain = Job.objects.create(name="noop")
    one, two = claimer(worker_id="one"), claimer(worker_id="two")
    taken = one.claim(10) + two.claim(10) + one.claim(10) + two.claim(10)
    by_key = sorted(str(job.concurrency_key) for job in taken)
    assert by_key == ["None", "acct-1", "acct-1", "acct-2"]
    assert {job.pk for job in taken} >= {first.pk, second.pk, other.pk, plain.pk}
    assert Job.objects.get(pk=third.pk).state == "NEW"  # acct-1 holds its two
    assert one.claim(10) + two.claim(10) == []
    complete(next(job for job in taken if job.pk == first.pk))
    (again,) = one.claim(10) or two.claim(10)
    assert again.pk == third.pk


def test_keys_are_exact():
    Job.objects.create(name="noop", concurrency_key="Account-1")
    Job.objects.create(name="noop", concurrency_key="account-1")
    Job.objects.create(name="noop", concurrency_key="account-1 ")
    worker = claimer()
    assert len(worker.claim(1) + worker.claim(1) + worker.claim(1)) == 3


def test_racing_claimers_never_exceed_a_keys_limit():
    limit, claimers = 2, 6
    for _ in range(30):
        Job.objects.create(name="noop", concurrency_key="hot", concurrency_limit=limit)
    most, errors = [], []
    start = threading.Barrier(claimers)

    def claim_and_count(index: int) -> None:
        try:
            worker = claimer(worker_id=f"racer-{index}")
            start.wait()
            for _ in range(5):
                worker.claim(3)
                held = Job.objects.filter(concurrency_key="hot", state="PROCESSING").count()
                most.append(held)
        except Exception as error:
            errors.append(error)
        finally:
            connections.close_all()

    threads = [threading.Thread(target=claim_and_count, args=(i,)) for i in range(claimers)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=120)
    assert not errors, errors
    assert max(most) == limit  # reached, never passed
    assert Job.objects.filter(state="PROCESSING").count() == limit


def test_a_claim_counts_the_keys_jobs_again_under_its_lock():
    """The unlocked look saw room; a claim committed meanwhile took it: nothing is claimed.

    Another transaction holds the key's row while this claim reads its candidates, and
    takes the key's one slot before letting go: the claim must count again once it
    holds the row.
    """
    if connection.vendor == "sqlite":
        pytest.skip("SQLite: a claim begins by taking the one write lock: none runs beside one")
    first = Job.objects.create(name="noop", concurrency_key="hot")
    # Of another queue: not among the claim's candidates, but its key's all the same.
    taker = Job.objects.create(name="noop", concurrency_key="hot", queue_name="elsewhere")
    ConcurrencyKey.objects.create(key="hot")
    at_lock, result = threading.Event(), {}

    def signal_at_lock(execute, sql, params, many, context):
        if ConcurrencyKey._meta.db_table in sql and not sql.lstrip().upper().startswith("INSERT"):
            at_lock.set()
        return execute(sql, params, many, context)

    def claim_in_thread() -> None:
        try:
            with connection.execute_wrapper(signal_at_lock):
                result["jobs"] = claimer(worker_id="late").claim(1)
        except Exception as error:
            result["error"] = error
            at_lock.set()
        finally:
            connections.close_all()

    thread = threading.Thread(target=claim_in_thread)
    with transaction.atomic():
        key_row = ConcurrencyKey.objects.select_for_update().get(key="hot")
        key_row.save()  # on SQLite: the write lock, as a claim takes it
        thread.start()
        assert at_lock.wait(60), "the claim never reached the key's lock"
        Job.objects.filter(pk=taker.pk).update(state="PROCESSING")  # the slot, taken
    thread.join(timeout=120)
    assert "error" not in result, result
    assert result["jobs"] == []
    assert Job.objects.get(pk=first.pk).state == "NEW"


def test_the_claim_indexes_leave_keyed_jobs_out_of_the_plain_claim():
    with connection.cursor() as cursor:
        if connection.vendor == "postgresql":
            cursor.execute("SELECT indexdef FROM pg_indexes WHERE indexname = 'dbq_job_runnable'")
        elif connection.vendor == "sqlite":
            cursor.execute("SELECT sql FROM sqlite_master WHERE name = 'dbq_job_runnable'")
        else:
            cursor.execute(
                "SELECT GENERATION_EXPRESSION FROM information_schema.COLUMNS WHERE "
                "TABLE_SCHEMA = DATABASE() AND TABLE_NAME = 'django_dbq_job' "
                "AND COLUMN_NAME = 'dbq_runnable_queue'"
            )
        (definition,) = cursor.fetchone()
    assert "concurrency_key" in definition and "NULL" in definition.upper()


def test_delete_old_jobs_prunes_the_rows_of_keys_nobody_holds():
    done = Job.objects.create(name="noop", concurrency_key="done")
    waiting = Job.objects.create(name="noop", concurrency_key="waiting")
    worker = claimer()
    jobs = worker.claim(1) + worker.claim(1)
    assert {job.pk for job in jobs} == {done.pk, waiting.pk}
    assert set(ConcurrencyKey.objects.values_list("key", flat=True)) == {"done", "waiting"}
    complete(next(job for job in jobs if job.pk == done.pk))
    Job.objects.delete_old(hours=0)
    assert list(ConcurrencyKey.objects.values_list("key", flat=True)) == ["waiting"]
    assert Job.objects.filter(pk=waiting.pk).exists()


# -- Django Tasks ------------------------------------------------------------------------


def test_a_task_fills_its_key_in_from_the_call():
    from tests import tasks_app

    result = tasks_app.sync_account.enqueue(account=42, label="x")
    job = Job.objects.get(pk=result.id)
    assert (job.concurrency_key, job.concurrency_limit) == ("account:42", 2)
    with pytest.raises(ValueError, match="account"):
        tasks_app.sync_account.enqueue(7)  # the key names an argument passed by keyword
    assert Job.objects.count() == 1


def test_a_backends_options_give_a_task_a_key_and_refuse_bad_ones():
    from django.core.exceptions import ImproperlyConfigured

    from django_dbq.tasks_backend import DatabaseBackend
    from django_dbq.tasks_backend.config import concurrency_for
    from tests import tasks_app

    options = {"tasks": {"tests.tasks_app.add": {"concurrency_key": "sum:{0}"}}}
    backend = DatabaseBackend("keyed", {"OPTIONS": options})
    assert concurrency_for(backend, tasks_app.add, (3, 4), {}) == {
        "concurrency_key": "sum:3",
        "concurrency_limit": 1,
    }
    assert concurrency_for(backend, tasks_app.echo, (3,), {}) == {}
    for bad in (
        {"concurrency_key": ""},
        {"concurrency_key": "k", "concurrency_per_key": 0},
        {"concurrency_per_key": 2},
    ):
        with pytest.raises(ImproperlyConfigured, match="concurrency_"):
            DatabaseBackend("broken", {"OPTIONS": {"tasks": {"tests.tasks_app.add": bad}}})
