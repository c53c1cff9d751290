"""Timeouts on a real ``manage.py worker``: it survives a timed-out step and goes on."""

import pytest

from django_dbq.models import Job

pytestmark = [pytest.mark.processes, pytest.mark.django_db]


@pytest.mark.django_db(transaction=True)
def test_a_real_worker_survives_a_timeout_and_runs_the_next_job(start_worker):
    slow = Job.objects.create(name="timed", workspace={"sleep": 120}, priority=1)
    after = Job.objects.create(name="chain")
    worker = start_worker("--drain")
    assert worker.wait() == 0
    slow.refresh_from_db()
    after.refresh_from_db()
    assert slow.state == "FAILED" and slow.errors[0]["type"] == "StepTimeout"
    assert after.state == "COMPLETE"
    assert "StepTimeout" in worker.log()
