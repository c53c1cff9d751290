"""Leases: a lost claim's writes are fenced off, a checkpoint renews the lease, and leases run on
UTC whatever the local time zone."""

import datetime

import pytest
from django.db import connection
from django.utils import timezone

from django_dbq.definitions import get_definition
from django_dbq.models import Job
from django_dbq.worker.execution import JobRun
from tests.helpers import claimer, rescue_lapsed_jobs

pytestmark = [pytest.mark.database, pytest.mark.django_db(transaction=True)]


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
    JobRun(job, lambda write: write(), lease_seconds=60).outcome.checkpoint(following)
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
