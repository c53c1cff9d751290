"""Claims: order, batches, several queues, no job shared, and the fewest round trips.

Leases, rescue, wake-ups and prefetching, also on the worker's hot path, have files of their
own (test_leases.py, test_rescue.py, test_wakeup.py, test_worker_batches.py).
"""

import datetime
import threading

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

from django_dbq import leases
from django_dbq.models import Job
from tests.helpers import claimer

pytestmark = [pytest.mark.database, pytest.mark.django_db(transaction=True)]


def test_claim_takes_as_few_round_trips_as_the_database_allows():
    Job.objects.bulk_create([Job(name="noop") for _ in range(5)])
    leases.now(connection.alias)  # the server's clock is read twice a minute, not per claim
    with CaptureQueriesContext(connection) as queries:
        jobs = claimer().claim(3)
    assert len(jobs) == 3
    expected = {"postgresql": 1, "sqlite": 3, "mysql": 4}[connection.vendor]
    assert len(queries) == expected, [query["sql"] for query in queries]
    if connection.vendor == "postgresql":
        assert "FOR UPDATE SKIP LOCKED" in queries[0]["sql"]
    if connection.vendor == "sqlite":
        assert queries[0]["sql"] == "BEGIN IMMEDIATE"


def test_claim_order_batch_queue_and_run_after():
    now = timezone.now()
    low = Job.objects.create(name="noop", priority=-5)
    old = Job.objects.create(name="noop")
    Job.objects.filter(pk=old.pk).update(created=now - datetime.timedelta(hours=1))
    new = Job.objects.create(name="noop")
    high = Job.objects.create(name="noop", priority=10)
    Job.objects.create(name="noop", run_after=now + datetime.timedelta(hours=1))
    Job.objects.create(name="noop", queue_name="elsewhere")
    Job.objects.create(name="noop", state="COMPLETE")

    jobs = claimer().claim(3)
    assert [job.pk for job in jobs] == [high.pk, old.pk, new.pk]
    assert len({job.lease_token for job in jobs}) == 1
    for job in jobs:
        stored = Job.objects.get(pk=job.pk)
        assert stored.state == "PROCESSING"
        assert stored.attempts == 1 == job.attempts
        assert stored.lease_token == job.lease_token
        assert stored.worker_id == "test-worker"
        assert stored.lease_expires_at > timezone.now()
    assert [job.pk for job in claimer().claim(10)] == [low.pk]
    assert claimer().claim(10) == []


@pytest.mark.parametrize("queues", [("default",), ("default", "other")], ids=["one", "two"])
def test_concurrent_claims_never_share_a_job(queues):
    Job.objects.bulk_create([Job(name="noop", queue_name=queues[i % 2 - 1]) for i in range(120)])
    claimed: list[list] = [[] for _ in range(4)]
    errors: list[BaseException] = []

    def claim_all(mine: list) -> None:
        from django.db import connections

        try:
            source = claimer(*queues, worker_id=f"thread-{threading.get_ident()}")
            for _ in range(200):  # bounded
                jobs = source.claim(3)
                if not jobs:
                    return
                mine.extend(job.pk for job in jobs)
        except BaseException as error:  # reported to the main thread
            errors.append(error)
        finally:
            connections.close_all()

    threads = [threading.Thread(target=claim_all, args=(mine,)) for mine in claimed]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(120)
    assert not errors
    everything = [pk for mine in claimed for pk in mine]
    assert len(everything) == len(set(everything)) == 120


def test_claim_from_several_queues_merges_them_in_priority_order():
    now = timezone.now()

    def make(queue: str, priority: int, age: int) -> Job:
        job = Job.objects.create(name="noop", queue_name=queue, priority=priority)
        Job.objects.filter(pk=job.pk).update(created=now - datetime.timedelta(minutes=age))
        return job

    a_old, a_high, a_new = make("a", 0, 30), make("a", 5, 1), make("a", 0, 1)
    b_old, b_high = make("b", 0, 60), make("b", 9, 2)
    make("c", 99, 99)  # not one of the worker's queues
    Job.objects.create(name="noop", queue_name="b", run_after=now + datetime.timedelta(hours=1))
    source = claimer("a", "b")
    assert [job.pk for job in source.claim(3)] == [b_high.pk, a_high.pk, b_old.pk]
    assert [job.pk for job in source.claim(10)] == [a_old.pk, a_new.pk]
    assert source.claim(10) == []
