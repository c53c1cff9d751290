"""Concurrency keys held by real workers of every mode, and given back by a rescue.

The jobs record their own start and end (tests.jobs.overlap_step, the guarantee tests'
``held`` job): the records, in the order they were written, tell how many jobs of one
key ran at once. No test asserts on times; every wait is bounded.
"""

import signal

import pytest

from django_dbq.models import Job
from tests.conftest import wait_for
from tests.helpers import all_complete, most_at_once, release, row, runs
from tests.models import Execution

pytestmark = [pytest.mark.processes, pytest.mark.django_db(transaction=True)]

ENV = {"DJANGO_SETTINGS_MODULE": "tests.settings_guarantees", "DBQ_POLL_INTERVAL": "0.1"}


def test_a_fleet_in_every_mode_never_runs_more_of_a_key_than_its_limit(start_worker, held_jobs):
    workers = [
        start_worker(env=ENV),
        start_worker("--concurrency", "4", "--mode", "threads", env=ENV),
        start_worker("--concurrency", "3", "--mode", "processes", env=ENV),
    ]
    for worker in workers:
        wait_for(lambda worker=worker: "Starting job worker" in worker.log(), what="a worker")
    hot = [
        Job.objects.create(name="held", concurrency_key="hot", concurrency_limit=2)
        for _ in range(3)
    ]
    wait_for(lambda: sum(runs(job)["held"] for job in hot) == 2, what="two jobs of the hot key")
    # Other keys run beside the full one; the hot key's third job still waits.
    others = [Job.objects.create(name="held", concurrency_key=f"k{i}") for i in range(2)]
    wait_for(lambda: all(runs(job)["held"] == 1 for job in others), what="the other keys' jobs")
    (waiting,) = [job for job in hot if not runs(job)["held"]]
    assert (row(waiting)["state"], row(waiting)["attempts"]) == ("NEW", 0)
    # And a crowd on one key, through the fleet's claims racing for it.
    crowd = [
        Job.objects.create(name="per_account", concurrency_key="crowd", workspace={"sleep": 0.1})
        for _ in range(20)
    ]
    for job in hot + others:
        release(job)
    wait_for(lambda: all_complete(hot + others + crowd), what="every job")
    assert most_at_once(hot) == 2
    assert 1 <= most_at_once(crowd) <= 2  # per_account: concurrency_per_key 2
    assert all(runs(job) == {"start": 1, "end": 1} for job in crowd)
    pids = Execution.objects.filter(step__in=("start", "held")).values_list("pid", flat=True)
    assert len(set(pids)) > 1
    for worker in workers:
        worker.signal(signal.SIGTERM)
        assert worker.wait() == 0, worker.log()[-3000:]


def test_a_killed_workers_key_slot_comes_back_once_its_lease_is_rescued(start_worker, held_jobs):
    env = {**ENV, "DBQ_LEASE_SECONDS": "3"}
    lost = Job.objects.create(name="held", concurrency_key="acct")
    victim = start_worker(env=env)
    wait_for(lambda: runs(lost)["held"] == 1, what="the victim to start the job")
    waiting = Job.objects.create(name="recorded", concurrency_key="acct")
    survivor = start_worker(env=env)
    free = Job.objects.create(name="noop")  # the survivor claims; the key has no room
    wait_for(lambda: row(free)["state"] == "COMPLETE", what="a job without a key")
    assert (row(waiting)["state"], row(waiting)["attempts"]) == ("NEW", 0)

    victim.signal(signal.SIGKILL)
    victim.wait()
    release(lost)  # the rescued job's next run goes straight through
    wait_for(lambda: all_complete([lost, waiting]), what="the rescue, then both jobs of the key")
    assert row(lost)["attempts"] == 2
    assert runs(waiting) == {"a": 1, "b": 1, "c": 1}
    # One at a time: the waiting job started after the rescued one ended.
    records = Execution.objects.order_by("id")
    ended = records.filter(job_id=str(lost.pk), step="b").values_list("id", flat=True)
    started = records.filter(job_id=str(waiting.pk)).values_list("id", flat=True)
    assert ended[0] < started[0]
    survivor.signal(signal.SIGTERM)
    assert survivor.wait() == 0, survivor.log()[-3000:]
