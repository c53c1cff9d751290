"""Retries on a real ``manage.py worker``."""

import pytest

from django_dbq.models import Job
from tests.helpers import executions

pytestmark = [pytest.mark.processes, pytest.mark.django_db]


@pytest.mark.django_db(transaction=True)
def test_a_real_worker_retries_and_completes_the_job(start_worker):
    job = Job.objects.create(name="retrying", workspace={"succeed_on": 3})
    worker = start_worker("--drain")
    assert worker.wait() == 0
    job.refresh_from_db()
    assert job.state == "COMPLETE" and job.workspace["succeeded_on"] == 3
    assert [error["attempt"] for error in job.errors] == [1, 2]
    assert executions(job) == ["a", "c"]
