"""README "Guarantees" through real ``manage.py worker`` processes.

The tasks (tests/guarantee_tasks.py) record what they do in ``tests_execution`` and
wait for a ``release`` row from the test, so every step of a test waits for a state,
never for a time.
"""

import collections
import datetime
import signal
import uuid

import pytest
from django.db import connection
from django.utils import timezone

from django_dbq import leases
from django_dbq.models import Job
from tests.conftest import wait_for
from tests.helpers import rescue_lapsed_jobs
from tests.models import Execution
from tests.settings_guarantees import GUARANTEE_JOBS

pytestmark = [pytest.mark.processes, pytest.mark.django_db(transaction=True)]

SETTINGS = {"DJANGO_SETTINGS_MODULE": "tests.settings_guarantees"}
TASKS = "tests.guarantee_tasks"


@pytest.fixture(autouse=True)
def guarantee_jobs(settings):
    settings.JOBS = GUARANTEE_JOBS


def runs(job: Job) -> collections.Counter:
    steps = Execution.objects.filter(job_id=str(job.pk)).values_list("step", flat=True)
    return collections.Counter(steps)


def recorded(job: Job, prefix: str) -> list[str]:
    steps = Execution.objects.filter(job_id=str(job.pk), step__startswith=prefix)
    return list(steps.values_list("step", flat=True))


def release(job: Job) -> None:
    Execution.objects.create(job_id=str(job.pk), step="release", pid=0)


def row(job: Job) -> dict:
    return Job.objects.filter(pk=job.pk).values().get()


def finished(job: Job) -> bool:
    return row(job)["state"] in ("COMPLETE", "FAILED", "CANCELLED")


def state_is(job: Job, state: str):
    return lambda: row(job)["state"] == state


def stop(*workers) -> None:
    for worker in workers:
        worker.signal(signal.SIGTERM)
        assert worker.wait() == 0, worker.log()[-3000:]


# -- 1. a step whose own query loses the database is released, not failed -------------------


def cut_off(ident: int) -> None:
    """End the server session ``ident`` from the test's own connection."""
    with connection.cursor() as cursor:
        if connection.vendor == "postgresql":
            cursor.execute("SELECT pg_terminate_backend(%s)", [ident])
            assert cursor.fetchone()[0] is True
        else:
            cursor.execute(f"KILL {int(ident)}")


def test_a_step_that_loses_its_connection_is_released_and_runs_again(start_worker):
    if connection.vendor == "sqlite":
        pytest.skip("SQLite has no server connection that another session could end")
    step = f"{TASKS}.lose_connection"
    job = Job.objects.create(name="loses_connection")
    worker = start_worker(env=SETTINGS)
    (seen,) = wait_for(lambda: recorded(job, "connection "), what="the step's connection id")
    cut_off(int(seen.split()[1]))
    wait_for(lambda: finished(job), what="the job to finish")
    values = row(job)
    assert values["state"] == "COMPLETE", values["error"]
    # That step ran again (the finished one before it did not), on a second attempt.
    assert runs(job) == {"a": 1, seen: 1, "queried": 1, "b": 1}
    assert values["attempts"] == 2
    [error] = values["errors"]
    assert error["type"] == "OperationalError"
    assert error["step"] == step and error["attempt"] == 1
    assert error["message"].startswith(f"the database connection was lost during {step}: ")
    assert values["lease_token"] is None
    stop(worker)


# -- 3. a worker never rescues its own jobs ---------------------------------------------------

REFUSE_HEARTBEATS = {
    # Heartbeats change lease_expires_at and nothing else (every other write sets modified).
    "postgresql": [
        """CREATE FUNCTION dbq_test_refuse_heartbeat() RETURNS trigger AS $$ BEGIN
            IF NEW.modified = OLD.modified
               AND NEW.lease_expires_at IS DISTINCT FROM OLD.lease_expires_at THEN
                RAISE EXCEPTION 'heartbeat refused by the test';
            END IF;
            RETURN NEW;
        END $$ LANGUAGE plpgsql""",
        """CREATE TRIGGER dbq_test_refuse_heartbeat BEFORE UPDATE ON django_dbq_job
           FOR EACH ROW EXECUTE FUNCTION dbq_test_refuse_heartbeat()""",
    ],
    "mysql": [
        """CREATE TRIGGER dbq_test_refuse_heartbeat BEFORE UPDATE ON django_dbq_job
           FOR EACH ROW BEGIN
            IF NEW.modified = OLD.modified
               AND NOT (NEW.lease_expires_at <=> OLD.lease_expires_at) THEN
                SIGNAL SQLSTATE '45000' SET MESSAGE_TEXT = 'heartbeat refused by the test';
            END IF;
           END"""
    ],
    "sqlite": [
        """CREATE TRIGGER dbq_test_refuse_heartbeat BEFORE UPDATE ON django_dbq_job
           FOR EACH ROW WHEN NEW.modified = OLD.modified
               AND NEW.lease_expires_at IS NOT OLD.lease_expires_at
           BEGIN SELECT RAISE(ABORT, 'heartbeat refused by the test'); END"""
    ],
}
ALLOW_HEARTBEATS = {
    "postgresql": [
        "DROP TRIGGER IF EXISTS dbq_test_refuse_heartbeat ON django_dbq_job",
        "DROP FUNCTION IF EXISTS dbq_test_refuse_heartbeat()",
    ],
    "mysql": ["DROP TRIGGER IF EXISTS dbq_test_refuse_heartbeat"],
    "sqlite": ["DROP TRIGGER IF EXISTS dbq_test_refuse_heartbeat"],
}


@pytest.fixture
def heartbeats_refused():
    """Every heartbeat write fails in the database, so held leases lapse for certain."""
    with connection.cursor() as cursor:
        for statement in REFUSE_HEARTBEATS[connection.vendor]:
            cursor.execute(statement)
    try:
        yield
    finally:
        with connection.cursor() as cursor:
            for statement in ALLOW_HEARTBEATS[connection.vendor]:
                cursor.execute(statement)


def lost_job_of_another_worker() -> Job:
    """A job held by a worker that is gone; rescuing it ends it (no one runs it)."""
    job = Job.objects.create(name="noop")
    Job.objects.filter(pk=job.pk).update(
        state="PROCESSING",
        attempts=99,
        lease_token=uuid.uuid4(),
        lease_expires_at=leases.now() - datetime.timedelta(minutes=5),
        worker_id="gone",
        modified=timezone.now(),
    )
    return job


def full_sweeps(count: int) -> None:
    """Wait until the worker's rescuer has swept the table ``count`` more times, whole.

    Each decoy is rescued by a sweep that began after the previous decoy's sweep
    ended: the second one proves that one whole sweep ran in between.
    """
    for _ in range(count + 1):
        decoy = lost_job_of_another_worker()
        wait_for(state_is(decoy, "FAILED"), what="the worker's rescuer to sweep")


def test_a_worker_never_rescues_its_own_job_however_late_its_heartbeat(
    start_worker, heartbeats_refused
):
    job = Job.objects.create(name="held")
    worker = start_worker(env={**SETTINGS, "DBQ_LEASE_SECONDS": "2"})
    wait_for(lambda: runs(job)["held"] == 1, what="the worker to start the long step")
    token = row(job)["lease_token"]
    wait_for(
        lambda: row(job)["lease_expires_at"] < leases.now(), what="the held job's lease to lapse"
    )
    full_sweeps(1)
    values = row(job)
    assert (values["state"], values["lease_token"]) == ("PROCESSING", token)
    assert values["errors"] == []
    release(job)
    wait_for(state_is(job, "COMPLETE"), what="the job to complete")
    assert runs(job) == {"held": 1, "release": 1, "b": 1}  # the step ran exactly once
    assert row(job)["attempts"] == 1 and row(job)["errors"] == []
    assert "heartbeat refused by the test" in worker.log()  # the heartbeat really failed
    stop(worker)


# -- 5. prefetched jobs share the heartbeat ---------------------------------------------------


def test_prefetched_jobs_keep_their_leases_while_the_first_job_runs(start_worker):
    # First a job that makes the worker claim a whole batch next, and keep the jobs it
    # prefetched behind a long one (instead of handing them back after a second).
    Job.objects.create(name="batch_and_keep", workspace={"patience": 3600}, priority=20)
    long = Job.objects.create(name="held", priority=10)
    behind = Job.objects.bulk_create([Job(name="recorded", priority=5) for _ in range(5)])
    lease = 8  # renewed every 2 s: a live heartbeat is never late by 6 s, even on a busy host
    worker = start_worker(env={**SETTINGS, "DBQ_LEASE_SECONDS": str(lease)})
    wait_for(lambda: runs(long)["held"] == 1, what="the worker to start the long job")
    token = row(long)["lease_token"]
    mates = Job.objects.filter(lease_token=token, state="PROCESSING").exclude(pk=long.pk)
    prefetched = list(mates.values_list("pk", flat=True))
    assert sorted(prefetched) == sorted(job.pk for job in behind)
    claimed_until = min(mates.values_list("lease_expires_at", flat=True))
    wait_for(
        lambda: leases.now() > claimed_until + datetime.timedelta(seconds=1),
        what="the claim's first lease to run out",
    )
    # Another worker looking now finds every lease of the batch renewed.
    assert rescue_lapsed_jobs() == 0
    held = Job.objects.filter(pk__in=prefetched)
    assert {(job.state, job.lease_token) for job in held} == {("PROCESSING", token)}
    assert all(job.lease_expires_at > claimed_until for job in held)
    release(long)
    wait_for(
        lambda: Job.objects.exclude(state="COMPLETE").count() == 0, what="every job to complete"
    )
    for job in Job.objects.filter(pk__in=[long.pk, *[job.pk for job in behind]]):
        assert (job.attempts, job.errors) == (1, [])
    for job in behind:
        assert runs(job) == {"a": 1, "b": 1, "c": 1}
    stop(worker)
