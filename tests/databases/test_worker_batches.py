"""Batches: what a worker claimed along with a long job is handed back, and a prefetched job whose
lease may have lapsed is checked before it starts."""

import datetime

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

from django_dbq.models import Job
from django_dbq.worker import Worker
from tests.conftest import wait_for
from tests.helpers import claimer, in_thread, rescue_lapsed_jobs, stop_thread
from tests.models import Execution

pytestmark = [pytest.mark.database, pytest.mark.django_db(transaction=True)]


def test_prefetched_jobs_behind_a_long_job_are_handed_back(settings):
    from tests.settings_guarantees import GUARANTEE_JOBS

    settings.JOBS = GUARANTEE_JOBS
    # The long job's step waits for the test ("release"), so it outlasts any stall here.
    long = Job.objects.create(name="held", priority=5)
    quick = Job.objects.bulk_create([Job(name="noop") for _ in range(5)])
    worker = Worker("default", poll_interval=0.1, lease_seconds=8, batch_size=20)
    worker.pacing.seconds_per_job = 0.001  # as if it had been running quick jobs: claim a batch
    thread = in_thread(worker)
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
        stop_thread(worker, thread)


def test_a_prefetched_job_whose_lease_may_have_lapsed_is_checked_before_it_starts():
    """After a pause (SIGSTOP, a long GC), a stale prefetched job must not run here."""
    kept, lost = Job.objects.create(name="noop"), Job.objects.create(name="noop")
    worker = Worker("default", lease_seconds=30)
    jobs = {job.pk: job for job in worker.claimer.claim(2)}
    worker.held.add(list(jobs.values()), claimed_at=0.0)  # claimed, then paused for long
    Job.objects.filter(pk=lost.pk).update(lease_expires_at=timezone.now() - datetime.timedelta(1))
    assert rescue_lapsed_jobs() == 1
    claimer(worker_id="other").claim(1)

    before = Job.objects.get(pk=kept.pk).lease_expires_at
    assert worker.intake.still_ours(jobs[kept.pk]) is True
    assert Job.objects.get(pk=kept.pk).lease_expires_at > before  # renewed on the way
    assert worker.intake.still_ours(jobs[lost.pk]) is False
    assert Job.objects.get(pk=lost.pk).worker_id == "other"
    # A recent claim or heartbeat needs no check (no query on the hot path).
    fresh = Job.objects.create(name="noop")
    (job,) = worker.claimer.claim(1)
    worker.held.add([job], claimed_at=__import__("time").monotonic())
    with CaptureQueriesContext(connection) as queries:
        assert worker.intake.still_ours(job) is True
    assert len(queries) == 0
    assert job.pk == fresh.pk
