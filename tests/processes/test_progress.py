"""Progress under real workers: seen while the step runs, kept through a kill and a rescue."""

import signal

import pytest

from django_dbq.models import Job
from tests.conftest import wait_for
from tests.helpers import release, row, runs

pytestmark = [pytest.mark.processes, pytest.mark.django_db(transaction=True)]


def test_progress_is_seen_while_the_step_runs_and_survives_a_rescue(start_worker):
    job = Job.objects.create(name="reports_then_holds")
    env = {"DBQ_LEASE_SECONDS": "3", "DBQ_POLL_INTERVAL": "0.1"}
    victim = start_worker(env=env)
    wait_for(lambda: runs(job)["reported"] == 1, what="the first report")
    assert row(job)["progress"] == {"done": 3, "total": 10, "message": "third"}
    victim.signal(signal.SIGKILL)
    victim.wait()
    release(job)
    survivor = start_worker(env=env)
    wait_for(lambda: row(job)["state"] == "COMPLETE", what="the rescue and the second run")
    # The second run started from the progress the first one wrote.
    assert runs(job)["resumed at 3"] == 1
    assert row(job)["progress"] == {"done": 10, "total": 10, "message": "done"}
    survivor.signal(signal.SIGTERM)
    assert survivor.wait() == 0, survivor.log()[-3000:]


@pytest.mark.parametrize("mode", ["threads", "async"])
def test_the_last_report_of_a_tight_loop_lands_in_every_mode(start_worker, mode):
    jobs = [Job.objects.create(name="counts_up", workspace={"total": 3000}) for _ in range(3)]
    worker = start_worker("--mode", mode, "--concurrency", "3", "--drain")
    assert worker.wait() == 0, worker.log()[-3000:]
    for job in jobs:
        values = row(job)
        assert values["state"] == "COMPLETE"
        assert values["progress"] == {"done": 3000, "total": 3000, "message": "item 3000"}
