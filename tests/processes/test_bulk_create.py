"""Jobs made by Job.objects.bulk_create run on a real worker like created ones."""

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext

from django_dbq.models import Job
from tests.conftest import wait_for

pytestmark = [pytest.mark.processes, pytest.mark.django_db(transaction=True)]


def test_bulk_created_jobs_are_prepared_like_created_ones_and_run(start_worker):
    workspaces = [{"input": i, "text": "quote ' \" \\ tab\t é ✓"} for i in range(50)]
    with CaptureQueriesContext(connection) as queries:
        jobs = Job.objects.bulk_create(
            [Job(name="hooked", workspace=workspace) for workspace in workspaces]
        )
    assert len(queries) <= len(workspaces) // 5  # a few statements, not one per job
    stored = {job.pk: job for job in Job.objects.all()}
    assert set(stored) == {job.pk for job in jobs}
    for job, workspace in zip(jobs, workspaces, strict=True):
        row = stored[job.pk]
        assert row.state == "NEW" and row.next_task == "tests.jobs.step_one"
        assert row.workspace == {**workspace, "created_by_hook": True}
        assert row.errors == [] and row.attempts == 0 and row.modified is not None
        assert (row.created, row.priority, row.queue_name) == (job.created, 0, "default")
        assert not job._state.adding
    worker = start_worker("--drain")
    assert worker.wait() == 0
    wait_for(lambda: set(Job.objects.values_list("state", flat=True)) == {"COMPLETE"})
    assert Job.objects.get(pk=jobs[7].pk).workspace["two"] == 16
