"""Graceful shutdown of real ``manage.py worker`` processes: SIGTERM/SIGINT, then a second one."""

import signal

import pytest

from django_dbq.models import Job
from tests.conftest import wait_for
from tests.helpers import in_step, release, row, runs, state_is
from tests.models import Execution

pytestmark = [pytest.mark.processes, pytest.mark.django_db(transaction=True)]


def pids_of(job: Job, step: str) -> set[int]:
    return set(
        Execution.objects.filter(job_id=str(job.pk), step=step).values_list("pid", flat=True)
    )


HELD = {"DJANGO_SETTINGS_MODULE": "tests.settings_guarantees"}
HOLD = "tests.guarantee_tasks.hold"


@pytest.mark.parametrize("signum", [signal.SIGTERM, signal.SIGINT], ids=["SIGTERM", "SIGINT"])
def test_signal_mid_task_finishes_the_step_and_another_worker_continues(
    start_worker, held_jobs, signum
):
    # The step waits for the test, not for a time: no window the test could miss.
    job = Job.objects.create(name="held")
    first = start_worker(env=HELD)
    wait_for(lambda: in_step(job, HOLD) and runs(job)["held"], what="the worker to hold the job")
    first.signal(signum)
    # While it finishes the step, the job is marked STOPPING...
    wait_for(state_is(job, "STOPPING"), what="the job to be marked STOPPING")
    release(job)
    assert first.wait() == 0
    # ...and once the step is saved, the rest is released, using no attempt.
    values = row(job)
    assert values["state"] == "READY"
    assert values["next_task"] == "tests.jobs.record_b"
    assert values["attempts"] == 0
    assert values["lease_token"] is None
    assert runs(job) == {"held": 1, "release": 1}

    second = start_worker("--drain", env=HELD)
    assert second.wait() == 0
    assert row(job)["state"] == "COMPLETE"
    assert runs(job) == {"held": 1, "release": 1, "b": 1}
    assert pids_of(job, "held") == {first.pid}
    assert pids_of(job, "b") == {second.pid}


def test_second_signal_stops_at_once_and_releases_the_interrupted_step(start_worker, held_jobs):
    # The held step records its start, then waits for the test: the signals cannot fall
    # between two steps (where a first signal alone stops the worker, nothing marked).
    job = Job.objects.create(name="held", workspace={"kept": True})
    first = start_worker(env=HELD)
    wait_for(lambda: in_step(job, HOLD) and runs(job)["held"], what="the worker to hold the job")
    first.signal(signal.SIGTERM)
    wait_for(state_is(job, "STOPPING"), what="the job to be marked STOPPING")
    first.signal(signal.SIGTERM)
    assert first.wait(timeout=60) == 0
    assert "Stopped at once by a second signal" in first.log()
    values = row(job)
    # The interrupted step is released to run again, using no attempt.
    assert values["state"] == "READY"
    assert values["next_task"] == HOLD
    assert values["attempts"] == 0
    assert values["lease_token"] is None
    assert values["workspace"] == {"kept": True}
    assert runs(job) == {"held": 1}

    release(job)
    second = start_worker("--drain", env=HELD)
    assert second.wait() == 0
    assert row(job)["state"] == "COMPLETE"
    assert runs(job) == {"held": 2, "release": 1, "b": 1}


def test_stop_releases_prefetched_jobs_that_never_started(start_worker, held_jobs):
    """A stopping worker hands back every job it claimed but did not start: none stays held."""
    Job.objects.bulk_create([Job(name="noop") for _ in range(50)])
    long = Job.objects.create(name="held", priority=-1)
    Job.objects.bulk_create([Job(name="noop", priority=-2) for _ in range(300)])
    worker = start_worker(env=HELD)
    wait_for(lambda: runs(long)["held"], what="the long job to start")
    worker.signal(signal.SIGTERM)
    wait_for(state_is(long, "STOPPING"), what="the long job to be marked STOPPING")
    release(long)
    assert worker.wait() == 0
    assert not Job.objects.filter(state__in=("PROCESSING", "STOPPING")).exists()
    assert not Job.objects.filter(lease_token__isnull=False).exists()
    waiting = Job.objects.filter(state__in=("NEW", "READY"))
    assert waiting.exists()
    assert not waiting.filter(attempts__gt=0).exists()


def test_stopping_never_outlives_its_worker(start_worker, held_jobs):
    """SIGTERM marks the job STOPPING; a SIGKILL before the step ends leaves it to be rescued."""
    job = Job.objects.create(name="held")
    # One live worker at a time: the short lease decides how soon the rescue comes.
    lease = {**HELD, "DBQ_LEASE_SECONDS": "2"}
    first = start_worker(env=lease)
    wait_for(lambda: runs(job)["held"], what="the worker to reach the long step")
    first.signal(signal.SIGTERM)
    wait_for(state_is(job, "STOPPING"), what="the job to be marked STOPPING")
    first.signal(signal.SIGKILL)
    first.wait()
    release(job)  # the rerun goes straight through
    second = start_worker(env=lease)
    wait_for(state_is(job, "COMPLETE"), what="the job to be rescued and completed")
    assert runs(job) == {"held": 2, "release": 1, "b": 1}
    assert row(job)["errors"][0]["type"] == "WorkerLost"
    second.signal(signal.SIGTERM)
    assert second.wait() == 0
