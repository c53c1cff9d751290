"""The threads mode as a process: signals, a kill, and steps stuck past their timeout."""

from __future__ import annotations

import signal

import pytest

from django_dbq.models import Job
from tests.conftest import wait_for
from tests.helpers import row, runs

pytestmark = [pytest.mark.processes, pytest.mark.django_db(transaction=True)]

SLEEP = "tests.jobs.sleep_step"
SLEEP_FIRST = "tests.jobs.sleep_first_attempt"


def threads_worker(start_worker, concurrency: int, *args: str, **options):
    """``manage.py worker --mode threads --concurrency N``."""
    return start_worker("--mode", "threads", "--concurrency", str(concurrency), *args, **options)


def test_sigterm_lets_every_running_step_finish_and_checkpoint(start_worker):
    jobs = [Job.objects.create(name="long", workspace={"sleep": 3}) for _ in range(4)]
    worker = threads_worker(start_worker, 4)
    wait_for(
        lambda: all(runs(job)["a"] and row(job)["next_task"] == SLEEP for job in jobs),
        what="every slot to be in its long step",
    )
    worker.signal(signal.SIGTERM)
    assert worker.wait() == 0
    for job in jobs:
        values = row(job)
        # The step ran to its end, its checkpoint landed, and the job was handed back.
        assert runs(job) == {"a": 1, "sleep": 1}
        assert (values["state"], values["next_task"]) == ("READY", "tests.jobs.record_b")
        assert values["lease_token"] is None


def test_killed_process_jobs_are_rescued_and_complete_elsewhere(start_worker):
    jobs = [Job.objects.create(name="long_first", workspace={"sleep": 120}) for _ in range(4)]
    lease = {"DBQ_LEASE_SECONDS": "2"}
    worker = threads_worker(start_worker, 4, env=lease)
    wait_for(
        lambda: all(row(job)["next_task"] == SLEEP_FIRST for job in jobs),
        what="every slot to be in its long step",
    )
    worker.signal(signal.SIGKILL)
    worker.wait()
    after = threads_worker(start_worker, 2, env=lease)
    wait_for(
        lambda: all(row(job)["state"] == "COMPLETE" for job in jobs),
        what="the other worker to rescue and run the jobs once their leases lapsed",
    )
    after.signal(signal.SIGTERM)
    assert after.wait() == 0
    for job in jobs:
        values = row(job)
        assert values["state"] == "COMPLETE"
        assert values["attempts"] == 2  # the lost attempt counts
        assert runs(job) == {"a": 1, "sleep": 1, "b": 1}


def test_steps_stuck_past_their_timeout_end_their_jobs_and_recycle_the_process(start_worker):
    stuck = [Job.objects.create(name="timed", workspace={"sleep": 300}) for _ in range(2)]
    worker = threads_worker(start_worker, 3, env={"DBQ_LEASE_SECONDS": "2"})
    # Two of three slots stuck: more than half. The process takes no more jobs and exits
    # non-zero (EX_TEMPFAIL) for its supervisor to start a fresh one.
    assert worker.wait() == 75
    for job in stuck:
        values = row(job)
        assert values["state"] == "FAILED"
        assert values["errors"][-1]["type"] == "StepTimeout"
        assert not runs(job)  # the steps never returned: the jobs were ended for them
    assert "2 of 3 slots are stuck" in worker.log()
