"""README "Guarantees", in process: fenced heartbeats and STOPPING marks, the rescue limit.

The worker-process side of the same guarantees is in tests/processes/test_guarantees_workers.py.
"""

import datetime
import uuid

import pytest
from django.db import OperationalError
from django.utils import timezone

from django_dbq import leases
from django_dbq.engine import Claimer, mark_stopping, renew_leases
from django_dbq.models import Job
from django_dbq.worker import Worker
from django_dbq.worker.execution import JobRun
from tests.helpers import rescue_lapsed_jobs

pytestmark = [pytest.mark.database, pytest.mark.django_db(transaction=True)]

A_WHILE_AGO = datetime.timedelta(minutes=5)


def claim_one(worker_id: str) -> Job:
    (job,) = Claimer(Job.objects.using("default"), ["default"], worker_id, 60).claim(1)
    return job


def lapse(job: Job) -> None:
    """Make the job's lease look lapsed, as if its worker had stopped renewing it."""
    Job.objects.filter(pk=job.pk).update(lease_expires_at=leases.now() - A_WHILE_AGO)


def row(job: Job) -> dict:
    return Job.objects.filter(pk=job.pk).values().get()


@pytest.fixture
def old_and_new_claim() -> tuple[Job, Job]:
    """A job claimed by ``old``, rescued after its lease lapsed, then claimed by ``new``."""
    Job.objects.create(name="noop")
    old = claim_one("old-worker")
    lapse(old)
    assert rescue_lapsed_jobs() == 1
    new = claim_one("new-worker")
    assert new.pk == old.pk and new.lease_token != old.lease_token
    return old, new


def heartbeat_of(worker_id: str, jobs: list[Job]) -> None:
    worker = Worker("default", lease_seconds=60)
    worker.worker_id = worker_id
    renew_leases(jobs, 60, "default")


def test_a_late_heartbeat_of_an_old_claim_changes_nothing(old_and_new_claim):
    old, new = old_and_new_claim
    before = row(new)
    heartbeat_of("old-worker", [old])
    assert row(new) == before
    # The current claim's heartbeat does renew (so the one above was really refused).
    heartbeat_of("new-worker", [new])
    assert row(new)["lease_expires_at"] > before["lease_expires_at"]


def test_a_late_heartbeat_after_a_rescue_does_not_revive_the_lease():
    Job.objects.create(name="noop")
    old = claim_one("old-worker")
    lapse(old)
    assert rescue_lapsed_jobs() == 1
    before = row(old)
    heartbeat_of("old-worker", [old])
    assert row(old) == before
    assert before["state"] == "READY" and before["lease_expires_at"] is None


def test_a_late_stopping_mark_of_an_old_claim_changes_nothing(old_and_new_claim):
    old, new = old_and_new_claim
    before = row(new)
    assert mark_stopping(old, "default") == 0
    assert row(new) == before
    assert before["state"] == "PROCESSING"
    assert mark_stopping(new, "default") == 1
    assert row(new)["state"] == "STOPPING"


def test_a_late_stopping_mark_after_a_rescue_changes_nothing():
    Job.objects.create(name="noop")
    old = claim_one("old-worker")
    lapse(old)
    assert rescue_lapsed_jobs() == 1
    before = row(old)
    assert mark_stopping(old, "default") == 0
    assert row(old) == before


# -- the rescue limit: max(max_attempts, DBQ_RESCUE_MAX_ATTEMPTS) -----------------------------


def held_and_lapsed(max_attempts: int, attempts: int) -> Job:
    """A job claimed ``attempts`` times, whose worker is gone."""
    job = Job.objects.create(name="noop")
    Job.objects.filter(pk=job.pk).update(
        state="PROCESSING",
        max_attempts=max_attempts,
        attempts=attempts,
        lease_token=uuid.uuid4(),
        lease_expires_at=leases.now() - A_WHILE_AGO,
        worker_id="lost-worker",
        modified=timezone.now(),
    )
    return job


@pytest.mark.parametrize(
    ("max_attempts", "attempts", "outcome"),
    [
        # max_attempts 3 < DBQ_RESCUE_MAX_ATTEMPTS 5: the setting is the limit.
        (3, 3, "READY"),
        (3, 4, "READY"),
        (3, 5, "FAILED"),
        # max_attempts 7 > 5: the job's own limit is.
        (7, 5, "READY"),
        (7, 6, "READY"),
        (7, 7, "FAILED"),
    ],
)
def test_rescue_gives_up_at_the_larger_of_max_attempts_and_the_setting(
    settings, max_attempts, attempts, outcome
):
    settings.DBQ_RESCUE_MAX_ATTEMPTS = 5
    job = held_and_lapsed(max_attempts, attempts)
    assert rescue_lapsed_jobs() == 1
    values = row(job)
    assert values["state"] == outcome
    assert values["attempts"] == attempts
    assert values["errors"][-1]["type"] == "WorkerLost"
    assert values["lease_token"] is None


@pytest.mark.parametrize(
    ("max_attempts", "attempts", "outcome"),
    [(3, 4, "READY"), (3, 5, "FAILED"), (7, 6, "READY"), (7, 7, "FAILED")],
)
def test_a_step_that_lost_the_database_gives_up_at_the_same_limit(
    settings, max_attempts, attempts, outcome
):
    settings.DBQ_RESCUE_MAX_ATTEMPTS = 5
    Job.objects.create(name="noop")
    job = claim_one("this-worker")
    Job.objects.filter(pk=job.pk).update(max_attempts=max_attempts, attempts=attempts)
    job.max_attempts, job.attempts = max_attempts, attempts
    error = OperationalError("server closed the connection unexpectedly")
    JobRun(job, lambda write: write()).outcome.release_after_outage(job.next_task, error)
    values = row(job)
    assert values["state"] == outcome
    assert values["attempts"] == attempts
    assert values["errors"][-1]["message"].startswith("the database connection was lost")


# -- a step timeout that fires while the step waits on a query --------------------------------


def test_a_step_timeout_during_a_query_fails_the_step_with_step_timeout(settings):
    """README, Retries and timeouts: a step over its timeout fails with StepTimeout."""
    settings.JOBS = {
        "db_sleep": {
            "tasks": ["tests.databases.test_shutdown.sleep_in_the_database"],
            "timeout": 1,
        },
        "noop": ["tests.jobs.noop"],
    }
    job = Job.objects.create(name="db_sleep", workspace={"sleep": 5})
    after = Job.objects.create(name="noop", priority=-1)
    Worker("default", drain=True).run()
    values = row(job)
    assert values["state"] == "FAILED", values
    assert values["errors"][-1]["type"] == "StepTimeout"
    assert values["lease_token"] is None
    assert row(after)["state"] == "COMPLETE"  # the connection works on
