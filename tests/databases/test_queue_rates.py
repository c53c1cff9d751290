"""Queue rate limits (``DBQ_QUEUES`` "rate"): when claims may start a job, fleet-wide.

Time is moved through the queue's row (``last_start_at``, on the server clock), never
waited for: no test here sleeps or asserts on elapsed time. Each ``Worker`` stands for
another worker (its own id); only its intake's claims are used.
"""

import threading

import pytest
from django.db import connection, connections
from django.test.utils import CaptureQueriesContext

from django_dbq import leases, queues
from django_dbq.models import Job
from django_dbq.queues import Queue
from django_dbq.worker.loop import Worker
from tests.databases.test_queue_limits import isolation  # noqa: F401 - a fixture

pytestmark = [pytest.mark.database, pytest.mark.django_db(transaction=True)]

# "2/m": one start per 30 s at most, far longer than any test here takes.
RATED = {"rated": {"rate": "2/m"}, "free": {}}
SPACING = 30.0


@pytest.fixture(autouse=True)
def rates(settings):
    settings.DBQ_QUEUES = RATED


def worker(*queue_names: str, name: str = "w") -> Worker:
    return Worker(list(queue_names or ["rated"]), worker_id=name)


def make(count: int, queue_name: str = "rated") -> list[Job]:
    return [Job.objects.create(name="noop", queue_name=queue_name) for _ in range(count)]


def started(queue_name: str = "rated") -> int:
    return Job.objects.filter(queue_name=queue_name, attempts__gte=1).count()


def last_start(queue_name: str = "rated") -> float | None:
    return Queue.objects.get(name=queue_name).last_start_at


def set_last_start(seconds_ago: float, queue_name: str = "rated") -> None:
    last = leases.server_epoch() - seconds_ago
    Queue.objects.filter(name=queue_name).update(last_start_at=last)


def due_now(queue_name: str = "rated") -> None:
    """Move the queue's last start one spacing back (as if the spacing had passed)."""
    set_last_start(SPACING + 0.001, queue_name)


def test_one_start_per_spacing_then_none_until_it_is_due():
    make(5)
    one, two = worker(name="one"), worker(name="two")
    (first,) = one.intake.claim(10)  # never more than one start per claim
    assert two.intake.claim(10) == []
    assert one.intake.claim(10) == []
    assert started() == 1
    # The claim's time on the database server's clock; the next start is one spacing on.
    # (This process's reading of that clock may be off by milliseconds either way.)
    assert -1.0 < leases.server_epoch() - last_start() < SPACING
    assert 0 < two.intake.rate_wait() <= SPACING
    for count in range(2, 5):
        due_now()
        (job,) = two.intake.claim(10)
        assert job.pk != first.pk
        assert one.intake.claim(10) == []
        assert started() == count


def test_a_claim_that_finds_no_job_spends_nothing():
    idle = worker(name="idle")
    assert idle.intake.claim(1) == []
    assert last_start() is None and idle.intake.rate_wait() is None
    make(2)
    assert len(idle.intake.claim(1)) == 1  # the first job starts at once


def test_a_worker_waits_until_the_next_start_and_no_longer_than_a_poll():
    make(2)
    one = worker(name="one")
    one.intake.claim(1)
    assert one.intake.claim(1) == []
    assert one.intake.idle_wait(0.5) == 0.5  # the next start is 30 s away: one poll
    set_last_start(SPACING - 0.25)  # the next start is due in 0.25 s
    assert one.intake.claim(1) == []
    assert 0 < one.intake.idle_wait(10.0) <= 0.25  # not a poll: the start comes sooner
    due_now()
    assert len(one.intake.claim(1)) == 1
    assert one.intake.rate_wait() is None
    assert one.intake.idle_wait(0.5) == 0.5


def test_a_rate_and_a_concurrency_limit_together(settings):
    settings.DBQ_QUEUES = {"rated": {"rate": "2/m", "concurrency": 1}}
    make(3)
    (job,) = worker(name="one").intake.claim(1)
    due_now()
    before = last_start()
    assert worker(name="two").intake.claim(1) == []  # the rate allows one, the limit does not
    assert last_start() == before  # a start refused by the limit spends nothing
    Job.objects.filter(pk=job.pk).update(state="COMPLETE")
    assert len(worker(name="three").intake.claim(1)) == 1
    assert worker(name="four").intake.claim(1) == []  # now the rate holds it back
    assert started() == 2


def test_a_held_back_queue_does_not_hold_back_the_others():
    make(3)
    make(4, "free")
    both = worker("rated", "free", name="both")
    taken = [job.queue_name for _ in range(4) for job in both.intake.claim(1)]
    assert sorted(taken) == ["free", "free", "free", "rated"], taken
    # The rated queue is held back; the last free job is still taken.
    assert [job.queue_name for job in both.intake.claim(1)] == ["free"]
    assert both.intake.claim(1) == []
    # The free queue's claims are the statement they were without DBQ_QUEUES.
    free = worker("free", name="free")
    free.intake.pauses.read()
    leases.now(connection.alias)
    with CaptureQueriesContext(connection) as queries:
        free.intake.claim(5)
    assert not any(Queue._meta.db_table in query["sql"] for query in queries)


def test_a_changed_rate_applies_from_the_next_claim(settings):
    make(3)
    worker(name="one").intake.claim(1)
    set_last_start(2.0)
    assert worker(name="two").intake.claim(1) == []  # "2/m": 30 s apart
    settings.DBQ_QUEUES = {"rated": {"rate": "1/s"}}  # the workers restarted with a new rate
    assert len(worker(name="three").intake.claim(1)) == 1  # 1 s apart: 2 s have passed
    assert worker(name="four").intake.claim(1) == []


def test_a_paused_rated_queue_keeps_its_last_start():
    make(2)
    worker(name="one").intake.claim(1)
    before = last_start()
    queues.pause("rated")
    queues.resume("rated")
    assert last_start() == before
    assert worker(name="two").intake.claim(1) == []


@pytest.mark.parametrize("rounds", [3])
def test_racing_claimers_start_one_job_per_spacing(rounds, isolation):  # noqa: F811
    make(30)
    errors = []

    def claim_repeatedly(index: int, start: threading.Barrier) -> None:
        try:
            claimant = worker(name=f"racer-{index}")
            start.wait()
            for _ in range(8):
                claimant.intake.claim(3)
        except Exception as error:  # reported below: a thread's failure must fail the test
            errors.append(error)
        finally:
            connections.close_all()

    for round_ in range(1, rounds + 1):
        start = threading.Barrier(8)
        threads = [threading.Thread(target=claim_repeatedly, args=(i, start)) for i in range(8)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(120)
        assert not errors, errors
        # Eight workers, 64 claims: one start per spacing, the spacing not yet passed.
        assert started() == round_
        due_now()


def test_postgresql_notifies_pauses_and_not_the_rate_writes():
    """Migration 0012: the queue row's trigger fires on ``paused_at`` only, so a rated
    queue's claims, which write its row at every start, wake no worker."""
    if connection.vendor != "postgresql":
        pytest.skip("LISTEN/NOTIFY is PostgreSQL's")
    from django_dbq import backends

    make(1)
    one = worker(name="one")
    assert one.intake.claimer  # made the queue's row: an insert, which notifies
    waiter = backends.for_alias("default").waiter(threading.Event(), ["rated"], listen=True)
    try:
        assert waiter.listening()
        assert len(one.intake.claim(1)) == 1  # writes last_start_at
        due_now()
        queues.pause("rated")
        payloads = [note.payload for note in waiter.connection.notifies(timeout=1.0)]
        assert payloads == ["pause"]  # the pause's, not the claim's nor due_now's
    finally:
        waiter.close()


def test_a_draining_worker_waits_for_a_held_back_queue_instead_of_stopping(settings):
    settings.DBQ_QUEUES = {"rated": {"rate": "20/s"}}  # 50 ms apart: a bounded wait
    jobs = make(3)
    Worker(["rated"], worker_id="drainer", drain=True, poll_interval=0.1).run()
    assert Job.objects.filter(pk__in=[job.pk for job in jobs], state="COMPLETE").count() == 3
