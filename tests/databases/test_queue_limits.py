"""Queue concurrency limits (``DBQ_QUEUES``): what claims take, and what they leave.

Each ``Worker`` here stands for another worker (its own id); only its intake's claims
are used. The processes tests (tests/processes/test_queue_limits.py) run real workers.
"""

import datetime
import threading

import pytest
from django.db import connection, connections
from django.test import override_settings
from django.test.utils import CaptureQueriesContext

from django_dbq import leases, queues
from django_dbq.models import Job
from django_dbq.queues import Queue
from django_dbq.worker.loop import Worker
from tests.helpers import rescue_lapsed_jobs

pytestmark = [pytest.mark.database, pytest.mark.django_db(transaction=True)]

LIMITED = {"limited": {"concurrency": 2}, "free": {}}


@pytest.fixture(autouse=True)
def limits(settings):
    settings.DBQ_QUEUES = LIMITED


def worker(*queue_names: str, name: str = "w") -> Worker:
    return Worker(list(queue_names or ["limited"]), worker_id=name)


def running(queue_name: str = "limited") -> int:
    return Job.objects.filter(queue_name=queue_name, state__in=["PROCESSING", "STOPPING"]).count()


def make(count: int, queue_name: str = "limited") -> list[Job]:
    return [Job.objects.create(name="noop", queue_name=queue_name) for _ in range(count)]


def finish(job: Job) -> None:
    Job.objects.filter(pk=job.pk).update(state="COMPLETE")


def test_claims_stop_at_the_limit_and_a_finished_job_frees_its_slot():
    make(6)
    first, second, third = worker(name="one"), worker(name="two"), worker(name="three")
    # No claiming ahead in a limited queue: a job held waiting would take a slot.
    (a,) = first.intake.claim(10)
    (b,) = second.intake.claim(10)
    assert third.intake.claim(10) == []
    assert first.intake.claim(10) == []
    assert running() == 2
    finish(a)
    (c,) = third.intake.claim(10)
    assert c.pk not in (a.pk, b.pk)
    assert third.intake.claim(10) == []
    assert running() == 2
    assert Job.objects.filter(queue_name="limited", state="NEW").count() == 3


def test_a_stopping_job_holds_its_slot():
    make(3)
    (job,) = worker(name="one").intake.claim(1)
    worker(name="two").intake.claim(1)
    Job.objects.filter(pk=job.pk).update(state="STOPPING")
    assert worker(name="three").intake.claim(1) == []


@override_settings(DBQ_QUEUES={"limited": {"concurrency": 1}})
def test_a_lapsed_lease_holds_its_slot_until_the_job_is_rescued():
    lost, waiting = make(2)
    (claimed,) = worker(name="dead").intake.claim(1)
    assert claimed.pk == lost.pk
    lapsed = leases.now("default") - datetime.timedelta(seconds=5)
    Job.objects.filter(pk=lost.pk).update(lease_expires_at=lapsed)
    other = worker(name="alive")
    assert other.intake.claim(1) == []  # lapsed, not yet rescued: still PROCESSING
    assert rescue_lapsed_jobs() == 1
    (again,) = other.intake.claim(1)
    assert again.pk == lost.pk  # rescued READY, first in line again
    assert running() == 1


def test_queues_without_a_limit_claim_as_before():
    make(2)
    make(5, "free")
    worker(name="one").intake.claim(1)
    worker(name="two").intake.claim(1)  # the limited queue is full
    leases.now(connection.alias)
    free = worker("free", name="three")
    free.intake.pauses.read()  # the pause state is read at most once per poll interval
    with CaptureQueriesContext(connection) as queries:
        jobs = free.intake.claim(5)
    assert len(jobs) == 5
    # The same statement as without DBQ_QUEUES (tests/databases/test_claim.py).
    expected = {"postgresql": 1, "sqlite": 3, "mysql": 4}[connection.vendor]
    assert len(queries) == expected, [query["sql"] for query in queries]
    assert not any(Queue._meta.db_table in query["sql"] for query in queries)


def test_a_worker_of_limited_and_free_queues_takes_from_both_in_turn():
    make(3)
    make(3, "free")
    both = worker("limited", "free", name="both")
    taken = []
    for _ in range(4):
        (job,) = both.intake.claim(1)
        taken.append(job.queue_name)
        finish(job)
    assert taken.count("limited") == 2 and taken.count("free") == 2, taken
    # A larger claim takes free jobs ahead, and at most one limited job.
    jobs = both.intake.claim(10)
    assert sorted(job.queue_name for job in jobs) == ["free", "limited"]


def test_a_paused_limited_queue_is_not_claimed_and_its_row_stays_unpaused_otherwise():
    make(2)
    worker(name="one").intake.claim(1)
    assert Queue.objects.get(name="limited").paused_at is None  # the row the claims lock
    queues.pause("limited")
    assert worker(name="two").intake.claim(1) == []
    queues.resume("limited")
    assert len(worker(name="three").intake.claim(1)) == 1


def repeatable_read():
    if connection.vendor == "postgresql":
        from django.db.backends.postgresql.psycopg_any import IsolationLevel

        return IsolationLevel.REPEATABLE_READ
    return "repeatable read"


@pytest.fixture(params=["default", "repeatable read"])
def isolation(request):
    """The racing claimers' connections at Django's isolation level, or a stricter one."""
    options = connection.settings_dict.setdefault("OPTIONS", {})
    before = dict(options)
    if request.param != "default":
        if connection.vendor == "sqlite":
            pytest.skip("SQLite has no isolation levels to choose")
        # The dict each thread's new connection to this alias is made from.
        options["isolation_level"] = repeatable_read()
    yield request.param
    options.clear()
    options.update(before)


@pytest.mark.parametrize("limit", [1, 3])
def test_racing_claimers_never_exceed_the_limit(limit, isolation, settings):
    settings.DBQ_QUEUES = {"limited": {"concurrency": limit}}
    make(30)
    start = threading.Barrier(8)
    errors = []

    def claim_repeatedly(index: int) -> None:
        try:
            claimant = worker(name=f"racer-{index}")
            start.wait()
            for _ in range(10):
                claimant.intake.claim(2)
        except Exception as error:  # reported below: a thread's failure must fail the test
            errors.append(error)
        finally:
            connections.close_all()

    threads = [threading.Thread(target=claim_repeatedly, args=(i,)) for i in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(120)
    assert not errors, errors
    assert running() == limit
    assert Job.objects.filter(queue_name="limited", attempts=1).count() == limit


def test_the_lock_row_is_made_again_when_missing():
    one = worker(name="one")
    assert one.intake.claim(1) == []  # its claimer is built, and made the row
    Queue.objects.filter(name="limited").delete()
    make(1)
    (job,) = one.intake.claim(1)
    assert job.queue_name == "limited"
    assert Queue.objects.filter(name="limited", paused_at__isnull=True).exists()


def test_several_limited_queues_take_turns(settings):
    settings.DBQ_QUEUES = {"a": {"concurrency": 5}, "b": {"concurrency": 5}}
    make(3, "a")
    make(3, "b")
    both = worker("a", "b", name="both")
    taken = [job.queue_name for _ in range(4) for job in both.intake.claim(3)]
    assert sorted(taken) == ["a", "a", "b", "b"], taken
    # One full queue does not stop the claims of the other.
    settings.DBQ_QUEUES = {"a": {"concurrency": 2}, "b": {"concurrency": 5}}
    again = worker("a", "b", name="again")
    assert [job.queue_name for job in again.intake.claim(1)] == ["b"]
    assert [job.queue_name for job in again.intake.claim(1)] == []


def test_beside_a_queue_without_a_limit_no_limited_queue_is_left_out(settings):
    settings.DBQ_QUEUES = {"a": {"concurrency": 50}, "b": {"concurrency": 50}}
    make(10, "a")
    make(10, "b")
    make(20, "free")
    mixed = worker("a", "b", "free", name="mixed")
    taken = [job.queue_name for _ in range(12) for job in mixed.intake.claim(1)]
    assert (taken.count("a"), taken.count("b"), taken.count("free")) == (3, 3, 6), taken
