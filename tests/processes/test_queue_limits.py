"""Queue concurrency limits (``DBQ_QUEUES``) held by real workers, whatever their mode.

The jobs record their own start and end (tests.jobs.overlap_step): the records, in the
order they were written, tell how many jobs of the queue ran at once. No test asserts
on times; every wait is bounded.
"""

import json
import os
import signal

import pytest

from django_dbq.models import Job
from tests.conftest import wait_for
from tests.helpers import all_complete, in_step, most_at_once, release, row, runs
from tests.models import Execution

pytestmark = [pytest.mark.processes, pytest.mark.django_db(transaction=True)]


def settings_with(limits: dict, **more: str) -> dict[str, str]:
    """The environment of a worker whose DBQ_QUEUES is ``limits``."""
    return {
        "DJANGO_SETTINGS_MODULE": "tests.settings_limits",
        "DBQ_TEST_QUEUES": json.dumps(limits),
        "DBQ_POLL_INTERVAL": "0.1",
        **more,
    }


def test_a_fleet_of_workers_in_every_mode_never_runs_more_than_the_limit(start_worker, held_jobs):
    limit = 3
    env = settings_with({"limited": {"concurrency": limit}})
    # A first worker holds one slot with a long job, so the others share the rest: more
    # than one process takes part whichever of them is quickest to claim.
    first = start_worker("limited", env=env)
    long = Job.objects.create(name="held", queue_name="limited")
    wait_for(lambda: runs(long)["held"] == 1, what="the first worker to start the long job")
    workers = [
        first,
        start_worker("limited", env=env),
        start_worker("limited", "--concurrency", "4", "--mode", "threads", env=env),
        start_worker("limited", "--concurrency", "3", "--mode", "processes", env=env),
    ]
    jobs = [
        Job.objects.create(name="overlapping", queue_name="limited", workspace={"sleep": 0.3})
        for _ in range(30)
    ]
    wait_for(lambda: runs(jobs[-1])["start"] == 1, what="the last short job to start")
    release(long)
    wait_for(lambda: all_complete([long, *jobs]), what="the limited queue's jobs to complete")
    assert all(runs(job) == {"start": 1, "end": 1} for job in jobs)
    assert 2 <= most_at_once(Job.objects.filter(queue_name="limited")) <= limit
    # Several processes took part: the limit held across them, not within one.
    pids = Execution.objects.filter(step__in=("start", "held")).values_list("pid", flat=True)
    assert len(set(pids)) > 1
    for worker in workers:
        worker.signal(signal.SIGTERM)
        assert worker.wait() == 0, worker.log()[-3000:]


def test_a_killed_workers_slot_comes_back_once_its_lease_is_rescued(start_worker, held_jobs):
    env = settings_with({"limited": {"concurrency": 1}}, DBQ_LEASE_SECONDS="3")
    lost = Job.objects.create(name="long_first", queue_name="limited", workspace={"sleep": 600})
    victim = start_worker("limited", env=env)
    wait_for(lambda: in_step(lost, "tests.jobs.sleep_first_attempt"), what="the long step")
    waiting = Job.objects.create(name="recorded", queue_name="limited")
    survivor = start_worker("limited", "free", env=env)
    # The survivor claims (its free jobs run) but the limited queue has no room.
    for _ in range(3):
        free = Job.objects.create(name="noop", queue_name="free")
        wait_for(lambda free=free: row(free)["state"] == "COMPLETE", what="a free job")
    assert (row(waiting)["state"], row(waiting)["attempts"]) == ("NEW", 0)

    victim.signal(signal.SIGKILL)
    victim.wait()
    wait_for(lambda: all_complete([lost, waiting]), what="the rescue, then both limited jobs")
    values = row(lost)
    assert values["attempts"] == 2
    assert [error["type"] for error in values["errors"]] == ["WorkerLost"]
    assert runs(waiting) == {"a": 1, "b": 1, "c": 1}
    survivor.signal(signal.SIGTERM)
    assert survivor.wait() == 0, survivor.log()[-3000:]


def test_a_dead_childs_slot_comes_back_at_once_through_its_supervisor(start_worker, held_jobs):
    """With a 300 s lease, only the supervisor's rescue frees the slot within the wait."""
    env = settings_with({"limited": {"concurrency": 1}}, DBQ_LEASE_SECONDS="300")
    lost = Job.objects.create(name="long_first", queue_name="limited", workspace={"sleep": 600})
    worker = start_worker("limited", "free", "--concurrency", "2", env=env)
    wait_for(lambda: in_step(lost, "tests.jobs.sleep_first_attempt"), what="the long step")
    waiting = Job.objects.create(name="recorded", queue_name="limited")
    for _ in range(3):  # the children claim, but the limited queue has no room
        free = Job.objects.create(name="noop", queue_name="free")
        wait_for(lambda free=free: row(free)["state"] == "COMPLETE", what="a free job")
    assert (row(waiting)["state"], row(waiting)["attempts"]) == ("NEW", 0)

    started = Execution.objects.filter(job_id=str(lost.pk), step="a")
    (victim,) = started.values_list("pid", flat=True)
    os.kill(victim, signal.SIGKILL)
    wait_for(lambda: all_complete([lost, waiting]), what="the rescue, then both limited jobs")
    assert row(lost)["attempts"] == 2
    assert "Rescued 1 job(s) of worker" in worker.log()
    # Stopped once the dead child's replacement is up (a slot still starting counts as unclean).
    wait_for(lambda: worker.log().count("Started worker process") == 3, what="a replacement")
    worker.signal(signal.SIGTERM)
    assert worker.wait() == 0, worker.log()[-3000:]


def test_a_saturated_limited_queue_does_not_hold_up_the_others(start_worker, held_jobs):
    env = settings_with({"limited": {"concurrency": 2}})
    held = [Job.objects.create(name="held", queue_name="limited") for _ in range(4)]
    worker = start_worker("limited", "free", "--concurrency", "4", "--mode", "threads", env=env)
    other = start_worker("limited", "free", env=env)
    wait_for(lambda: sum(runs(job)["held"] for job in held) == 2, what="two held jobs")
    free = [Job.objects.create(name="noop", queue_name="free") for _ in range(40)]
    wait_for(lambda: all_complete(free), what="the free queue's jobs, beside the full one")
    assert sum(runs(job)["held"] for job in held) == 2  # still full: the other two wait
    assert Job.objects.filter(pk__in=[job.pk for job in held], state="NEW").count() == 2
    for job in held:
        release(job)
    wait_for(lambda: all_complete(held), what="the held jobs, two at a time")
    for process in (worker, other):
        process.signal(signal.SIGTERM)
        assert process.wait() == 0, process.log()[-3000:]
