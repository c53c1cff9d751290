"""``manage.py worker --drain`` runs the jobs it rescues before it exits."""

import datetime
import uuid

import pytest

from django_dbq import leases
from django_dbq.models import Job

pytestmark = [pytest.mark.processes, pytest.mark.django_db(transaction=True)]


def lost(job: Job, *, lease: bool) -> None:
    """Make ``job`` look like one a dead worker held (a lapsed lease, or none at all)."""
    Job.objects.filter(pk=job.pk).update(
        state=Job.STATES.PROCESSING,
        next_task="tests.jobs.step_two",
        workspace={"one": 5},
        attempts=1,
        max_attempts=3,
        worker_id="gone-host:1:dead",
        lease_token=uuid.uuid4() if lease else None,
        # django-db-queue 3.3.0 leaves PROCESSING rows without any lease.
        lease_expires_at=leases.now() - datetime.timedelta(minutes=5) if lease else None,
    )


def test_a_single_drain_rescues_lapsed_jobs_and_runs_them(start_worker):
    lapsed = Job.objects.create(name="chain")
    leaseless = Job.objects.create(name="chain")
    lost(lapsed, lease=True)
    lost(leaseless, lease=False)

    worker = start_worker("--drain")
    assert worker.wait() == 0, worker.log()[-3000:]

    for job in (lapsed, leaseless):
        job.refresh_from_db()
        assert job.state == Job.STATES.COMPLETE, (job.state, worker.log()[-3000:])
        assert job.workspace == {"one": 5, "two": 10, "three": 13}
        assert "was lost" in job.errors[-1]["message"]


def test_drain_leaves_jobs_with_a_live_lease_alone(start_worker):
    held = Job.objects.create(name="chain")
    Job.objects.filter(pk=held.pk).update(
        state=Job.STATES.PROCESSING,
        lease_token=uuid.uuid4(),
        lease_expires_at=leases.now() + datetime.timedelta(hours=1),
        worker_id="alive-host:1:busy",
    )
    worker = start_worker("--drain")
    assert worker.wait() == 0, worker.log()[-3000:]
    held.refresh_from_db()
    assert held.state == Job.STATES.PROCESSING and held.worker_id == "alive-host:1:busy"
