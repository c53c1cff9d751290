"""Claims, batches, fencing, rescue and wake-ups: the worker's hot path."""

import datetime
import os
import re
import signal
import subprocess
import sys
import threading

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

from django_dbq import leases
from django_dbq.claim import Claimer
from django_dbq.definitions import get_definition
from django_dbq.execution import JobRun
from django_dbq.models import Job
from django_dbq.rescue import rescue_lapsed_jobs
from django_dbq.wakeup import Poller, PostgresListener, channel_name
from django_dbq.worker import Worker
from tests.conftest import ROOT, wait_for
from tests.models import Execution

pytestmark = [pytest.mark.database, pytest.mark.django_db(transaction=True)]


def claimer(*queues: str, lease: float = 60, worker_id: str = "test-worker") -> Claimer:
    return Claimer("default", queues or ("default",), worker_id, lease)


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


def test_fenced_writes_of_a_lost_claim_change_nothing():
    job = Job.objects.create(name="chain")
    (first,) = claimer(lease=0.01).claim(1)
    Job.objects.filter(pk=job.pk).update(lease_expires_at=timezone.now() - datetime.timedelta(1))
    assert rescue_lapsed_jobs() == 1
    (second,) = claimer(worker_id="other").claim(1)
    assert second.lease_token != first.lease_token
    before = Job.objects.filter(pk=job.pk).values().get()
    assert not first.fenced_update(workspace={"late": True}, next_task="")
    assert not first.fenced_update(state="COMPLETE")
    assert Job.objects.filter(pk=job.pk).values().get() == before
    assert second.fenced_update(workspace={"current": True})


def test_a_checkpoint_renews_the_lease_in_the_same_write():
    """A job that makes progress keeps its lease even if no heartbeat lands."""
    Job.objects.create(name="chain")
    (job,) = claimer(lease=0.01).claim(1)
    following = get_definition("chain").next_task_after(job.next_task)
    JobRun(job, lambda write: write(), lease_seconds=60).checkpoint(following)
    values = Job.objects.filter(pk=job.pk).values("next_task", "lease_expires_at").get()
    assert values["next_task"] == following
    assert values["lease_expires_at"] > timezone.now() + datetime.timedelta(seconds=30)
    assert rescue_lapsed_jobs() == 0


def test_leases_run_on_utc_when_use_tz_is_off(settings):
    """Under USE_TZ = False a daylight-saving jump in local time must not move leases."""
    settings.USE_TZ = False
    settings.TIME_ZONE = "Pacific/Auckland"  # UTC+13 in November, with daylight saving
    Job.objects.create(name="chain")
    (job,) = claimer(lease=60).claim(1)
    stored = Job.objects.filter(pk=job.pk).values_list("lease_expires_at", flat=True).get()
    if connection.features.supports_timezones:
        # PostgreSQL stores the absolute moment, and reads it back in local time.
        expected = timezone.now() + datetime.timedelta(seconds=60)
    else:
        # Wall-clock columns (MySQL, SQLite) hold naive UTC, never local time.
        expected = datetime.datetime.now(datetime.UTC).replace(tzinfo=None)
        expected += datetime.timedelta(seconds=60)
    assert abs(stored - expected) < datetime.timedelta(seconds=10)
    assert abs(job.started_at - timezone.now()) < datetime.timedelta(seconds=10)  # local
    assert rescue_lapsed_jobs() == 0
    lapsed = timezone.now() - datetime.timedelta(seconds=1)
    if not connection.features.supports_timezones:
        lapsed = datetime.datetime.now(datetime.UTC).replace(tzinfo=None)
        lapsed -= datetime.timedelta(seconds=1)
    Job.objects.filter(pk=job.pk).update(lease_expires_at=lapsed)
    assert rescue_lapsed_jobs() == 1


def test_rescue_returns_lapsed_jobs_and_fails_those_lost_too_often(settings):
    settings.DBQ_RESCUE_MAX_ATTEMPTS = 2
    job = Job.objects.create(name="chain", workspace={"kept": 1})
    alive = Job.objects.create(name="noop")
    jobs = claimer().claim(2)
    assert {j.pk for j in jobs} == {job.pk, alive.pk}
    Job.objects.filter(pk=job.pk).update(
        next_task="tests.jobs.step_two", lease_expires_at=timezone.now() - datetime.timedelta(1)
    )
    assert rescue_lapsed_jobs() == 1
    job.refresh_from_db()
    assert (job.state, job.next_task, job.workspace) == (
        "READY",
        "tests.jobs.step_two",
        {"kept": 1},
    )
    assert job.lease_token is None
    assert job.errors[-1]["type"] == "WorkerLost"
    assert Job.objects.get(pk=alive.pk).state == "PROCESSING"  # its lease is current

    claimer().claim(1)
    Job.objects.filter(pk=job.pk).update(lease_expires_at=timezone.now() - datetime.timedelta(1))
    assert rescue_lapsed_jobs() == 1
    job.refresh_from_db()
    assert job.state == "FAILED"
    assert "was lost" in job.error


def test_a_worker_never_rescues_the_jobs_it_holds():
    """Its heartbeat may be late, but it is alive: only others may take its jobs back."""
    Job.objects.create(name="noop")
    Job.objects.create(name="noop")
    (mine,) = claimer(worker_id="me").claim(1)
    (theirs,) = claimer(worker_id="them").claim(1)
    Job.objects.update(lease_expires_at=timezone.now() - datetime.timedelta(1))
    assert rescue_lapsed_jobs(keep=[mine.lease_token]) == 1
    assert Job.objects.get(pk=theirs.pk).state == "READY"
    assert Job.objects.get(pk=mine.pk).lease_token == mine.lease_token
    assert rescue_lapsed_jobs() == 1  # any other worker would take it
    assert Job.objects.get(pk=mine.pk).state == "READY"


def test_stopping_job_of_a_gone_worker_is_rescued():
    job = Job.objects.create(name="noop")
    claimer().claim(1)
    Job.objects.filter(pk=job.pk).update(
        state="STOPPING", lease_expires_at=timezone.now() - datetime.timedelta(seconds=1)
    )
    assert rescue_lapsed_jobs() == 1
    assert Job.objects.get(pk=job.pk).state == "READY"


# -- queue names, wake-ups, polling ------------------------------------------------


STRANGE_QUEUES = [
    "quo\"te's; DROP TABLE django_dbq_job; --",
    "with spaces and\ttabs",
    "ünïcødé 队列 🚀",
    "q" * 99 + "é",  # the longest the column allows
]


def test_channel_names_are_safe_identifiers_matching_the_trigger():
    channels = {channel_name(name) for name in STRANGE_QUEUES + ["default"]}
    assert len(channels) == len(STRANGE_QUEUES) + 1
    assert all(re.fullmatch(r"dbq_[0-9a-f]{32}", channel) for channel in channels)
    if connection.vendor == "postgresql":
        with connection.cursor() as cursor:
            for name in STRANGE_QUEUES:
                cursor.execute("SELECT 'dbq_' || md5(%s)", [name])
                assert cursor.fetchone()[0] == channel_name(name)


@pytest.mark.parametrize("queue", STRANGE_QUEUES, ids=["quotes", "spaces", "unicode", "long"])
def test_strange_queue_names_work_end_to_end(start_worker, queue):
    # A long poll interval: on PostgreSQL the second job can only be seen in time through NOTIFY.
    poll = "30" if connection.vendor == "postgresql" else "0.2"
    worker = start_worker(queue, env={"DBQ_POLL_INTERVAL": poll})
    first = Job.objects.create(name="noop", queue_name=queue)
    wait_for(lambda: Job.objects.get(pk=first.pk).state == "COMPLETE", what="the first job")
    second = Job.objects.create(name="chain", queue_name=queue, workspace={"input": 1})
    wait_for(
        lambda: Job.objects.get(pk=second.pk).state == "COMPLETE",
        timeout=20,
        what="the job enqueued while the worker waits",
    )
    assert Job.objects.get(pk=second.pk).workspace["three"] == 7
    assert Job.objects.filter(queue_name=queue).count() == 2
    assert Job.objects.get(pk=second.pk).queue_name == queue
    worker.signal(signal.SIGTERM)
    assert worker.wait() == 0
    assert "Traceback" not in worker.log()


def _in_thread(worker: Worker) -> threading.Thread:
    """Run ``worker`` in a thread, with the timed jobs (only the main thread can time) left out."""
    from django.conf import settings
    from django.test import override_settings

    untimed = {
        name: definition
        for name, definition in settings.JOBS.items()
        if not (isinstance(definition, dict) and definition.get("timeout"))
    }

    def run() -> None:
        from django.db import connections

        try:
            with override_settings(JOBS=untimed):
                worker.run()
        finally:
            connections.close_all()  # this thread's connection, so the test database can go

    thread = threading.Thread(target=run, daemon=True)
    thread.start()
    return thread


def _stop(worker: Worker, thread: threading.Thread) -> None:
    worker.shutdown()
    thread.join(60)
    assert not thread.is_alive()


def test_worker_with_listen_off_polls_and_works(settings):
    settings.DBQ_LISTEN = False
    worker = Worker("default", poll_interval=0.1)
    assert worker.listen is False
    assert type(worker._make_waiter()) is Poller
    thread = _in_thread(worker)
    try:
        wait_for(lambda: worker._heartbeat is not None, what="the worker to start")
        job = Job.objects.create(name="chain", workspace={"input": 1})
        wait_for(lambda: Job.objects.get(pk=job.pk).state == "COMPLETE", what="the job")
    finally:
        _stop(worker, thread)


def test_no_listen_flag_polls(start_worker):
    worker = start_worker("--no-listen", env={"DBQ_POLL_INTERVAL": "0.2"})
    wait_for(lambda: "Starting job worker" in worker.log(), what="the start line")
    job = Job.objects.create(name="noop")
    wait_for(lambda: Job.objects.get(pk=job.pk).state == "COMPLETE", what="the job")
    worker.signal(signal.SIGTERM)
    assert worker.wait() == 0


def test_listener_is_used_on_postgresql_only():
    waiter = Worker("default", listen=True)._make_waiter()
    try:
        expected = PostgresListener if connection.vendor == "postgresql" else Poller
        assert type(waiter) is expected
    finally:
        waiter.close()


# -- batches --------------------------------------------------------------------------------


CLAIM_AND_HANG = """
import os, sys, time
sys.path.insert(0, os.getcwd())
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "testsettings")
import django
django.setup()
from django_dbq import leases
from django_dbq.claim import Claimer
jobs = Claimer("default", ["default"], "doomed", 2.0).claim(int(sys.argv[1]))
print("claimed", len(jobs), flush=True)
time.sleep(600)
"""


def test_prefetched_jobs_of_a_killed_worker_are_rescued_and_run_once(start_worker):
    Job.objects.bulk_create([Job(name="recorded") for _ in range(8)])
    environment = dict(os.environ, DBQ_TEST_DATABASE_NAME=str(connection.settings_dict["NAME"]))
    doomed = subprocess.Popen(
        [sys.executable, "-c", CLAIM_AND_HANG, "5"],
        cwd=ROOT,
        env=environment,
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert doomed.stdout.readline().strip() == "claimed 5"
    finally:
        doomed.kill()
        doomed.wait(30)
    assert Job.objects.filter(state="PROCESSING", worker_id="doomed").count() == 5

    worker = start_worker(env={"DBQ_LEASE_SECONDS": "2"})
    wait_for(lambda: Job.objects.filter(state="COMPLETE").count() == 8, what="all jobs")
    counts = list(Execution.objects.values_list("job_id", "step"))
    assert len(counts) == len(set(counts)) == 24  # each step of each job once
    rescued = Job.objects.filter(attempts=2)
    assert rescued.count() == 5
    assert all(job.errors[-1]["type"] == "WorkerLost" for job in rescued)
    worker.signal(signal.SIGTERM)
    assert worker.wait() == 0


def test_prefetched_jobs_behind_a_long_job_are_handed_back(settings):
    from tests.settings_guarantees import GUARANTEE_JOBS

    settings.JOBS = GUARANTEE_JOBS
    # The long job's step waits for the test ("release"), so it outlasts any stall here.
    long = Job.objects.create(name="held", priority=5)
    quick = Job.objects.bulk_create([Job(name="noop") for _ in range(5)])
    worker = Worker("default", poll_interval=0.1, lease_seconds=8, batch_size=20)
    worker.seconds_per_job = 0.001  # as if it had been running quick jobs: claim a batch
    thread = _in_thread(worker)
    try:
        # While the long job runs, the quick ones it claimed along are released for others.
        wait_for(
            lambda: (
                Job.objects.get(pk=long.pk).state == "PROCESSING"
                and Job.objects.filter(pk__in=[job.pk for job in quick], state="READY").count() == 5
            ),
            what="the prefetched jobs to be handed back",
        )
        handed_back = Job.objects.filter(pk__in=[job.pk for job in quick])
        assert all(job.attempts == 0 and job.lease_token is None for job in handed_back)
        Execution.objects.create(job_id=str(long.pk), step="release", pid=0)
        wait_for(lambda: Job.objects.filter(state="COMPLETE").count() == 6, what="every job")
    finally:
        _stop(worker, thread)


def test_a_prefetched_job_whose_lease_may_have_lapsed_is_checked_before_it_starts():
    """After a pause (SIGSTOP, a long GC), a stale prefetched job must not run here."""
    kept, lost = Job.objects.create(name="noop"), Job.objects.create(name="noop")
    worker = Worker("default", lease_seconds=30)
    jobs = {job.pk: job for job in worker.claimer.claim(2)}
    for job in jobs.values():
        job._dbq_confirmed = 0.0  # as if claimed, then paused for a long time
    Job.objects.filter(pk=lost.pk).update(lease_expires_at=timezone.now() - datetime.timedelta(1))
    assert rescue_lapsed_jobs() == 1
    claimer(worker_id="other").claim(1)

    before = Job.objects.get(pk=kept.pk).lease_expires_at
    assert worker._still_ours(jobs[kept.pk]) is True
    assert Job.objects.get(pk=kept.pk).lease_expires_at > before  # renewed on the way
    assert worker._still_ours(jobs[lost.pk]) is False
    assert Job.objects.get(pk=lost.pk).worker_id == "other"
    # A recent claim or heartbeat needs no check (no query on the hot path).
    fresh = Job.objects.create(name="noop")
    (job,) = worker.claimer.claim(1)
    job._dbq_confirmed = __import__("time").monotonic()
    with CaptureQueriesContext(connection) as queries:
        assert worker._still_ours(job) is True
    assert len(queries) == 0
    assert job.pk == fresh.pk
