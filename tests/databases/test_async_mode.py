"""The async mode's pieces in this process; ``async def`` JOBS steps in the single worker."""

import pytest

from django_dbq.models import Job
from django_dbq.worker.execution import Done, finish
from django_dbq.worker.heartbeat import Heartbeat
from django_dbq.worker.held import HeldJobs
from django_dbq.worker.shutdown import Shutdown
from tests.helpers import claimer, executions, row, run_steps

pytestmark = [pytest.mark.database, pytest.mark.django_db]


def test_an_async_def_step_runs_between_sync_steps_in_the_single_worker():
    job = Job.objects.create(name="async_long", workspace={"sleep": 0.01})
    run_steps()
    job.refresh_from_db()
    assert job.state == "COMPLETE"
    assert executions(job) == ["a", "start", "sleep", "b"]


def test_the_inline_step_loop_never_suspends():
    async def steps():
        return await Done(1) + await Done(2)

    assert finish(steps()) == 3

    async def suspends():
        import asyncio

        await asyncio.sleep(0)

    with pytest.raises(RuntimeError, match="suspended"):
        finish(suspends())


def test_the_heartbeat_marks_every_running_job_of_one_claimed_batch_stopping():
    # The async mode runs the jobs of one claim (one token) at once, each held by its lane.
    for _ in range(3):
        Job.objects.create(name="noop")
    claimed = claimer().claim(3)
    assert len({job.claim_token for job in claimed}) == 1
    lanes = [HeldJobs() for _ in claimed]
    for lane, job in zip(lanes, claimed, strict=True):
        lane.start(job)
    shutdown = Shutdown()
    shutdown.request()
    Heartbeat(lanes, shutdown, "default", 60).tick()
    assert [row(job)["state"] for job in claimed] == ["STOPPING"] * 3
