"""Rescue: lapsed jobs are handed back (or failed when lost too often); a worker's own are kept."""

import datetime

import pytest
from django.utils import timezone

from django_dbq.models import Job
from tests.helpers import claimer, rescue_lapsed_jobs

pytestmark = [pytest.mark.database, pytest.mark.django_db(transaction=True)]


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
    assert rescue_lapsed_jobs(held_by_caller=[mine.lease_token]) == 1
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
