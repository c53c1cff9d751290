"""The fault suite: real ``manage.py worker`` processes killed, paused and stopped mid-work.

Each test bounds every wait (``wait_for``); none asserts on timing. Steps record
each run in ``tests_execution``, so the tests can count how often every step ran.
"""

import collections
import random
import signal

import pytest

from django_dbq.models import Job
from tests.conftest import wait_for
from tests.helpers import SLEEP, in_long_step, in_step, row, runs, state_is
from tests.models import Execution

pytestmark = [pytest.mark.processes, pytest.mark.django_db(transaction=True)]

# Short leases so that a lost worker's job is rescued within seconds.
SHORT_LEASE = {"DBQ_LEASE_SECONDS": "2"}


def test_kill_9_mid_task_another_worker_finishes_without_rerunning_finished_steps(start_worker):
    # A step far longer than the test can be late to see it (no window to miss); the
    # rerun is made short once the worker is dead.
    job = Job.objects.create(name="long", workspace={"sleep": 600})
    first = start_worker(env=SHORT_LEASE)
    wait_for(lambda: in_step(job, SLEEP), what="the first worker to reach the long step")
    assert runs(job) == {"a": 1}
    first.signal(signal.SIGKILL)
    first.wait()
    Job.objects.filter(pk=job.pk).update(workspace={"sleep": 0.1})

    # Only one live worker at a time: the short lease decides how soon the rescue comes.
    second = start_worker(env=SHORT_LEASE)
    wait_for(state_is(job, "COMPLETE"), what="the job to complete on the second worker")
    assert runs(job) == {"a": 1, "sleep": 1, "b": 1}  # step a was not run again
    values = row(job)
    assert values["attempts"] == 2
    assert values["lease_token"] is None
    assert [error["type"] for error in values["errors"]] == ["WorkerLost"]
    assert f"Rescued job {job.pk}" in second.log()
    lost_pids = set(
        Execution.objects.filter(job_id=str(job.pk), step="a").values_list("pid", flat=True)
    )
    assert lost_pids == {first.pid}


def test_a_task_longer_than_the_lease_keeps_its_lease(start_worker):
    """Heartbeats renew the lease: a long task is not rescued while its worker lives."""
    # Over two leases long. A 6 s lease is renewed every 1.5 s: a rescue by the other
    # worker here would take a heartbeat stalled by 4.5 s, not just a busy machine.
    job = Job.objects.create(name="long", workspace={"sleep": 14})
    workers = [start_worker(env={"DBQ_LEASE_SECONDS": "6"}) for _ in range(2)]
    wait_for(state_is(job, "COMPLETE"), what="the job to complete")
    assert runs(job) == {"a": 1, "sleep": 1, "b": 1}
    values = row(job)
    assert values["attempts"] == 1
    assert values["errors"] == []
    for worker in workers:
        worker.signal(signal.SIGTERM)
        assert worker.wait() == 0


def _counts_per_step(jobs: int, steps: str = "abc") -> tuple[collections.Counter, set]:
    counts = collections.Counter(Execution.objects.values_list("job_id", "step"))
    ids = {str(pk) for pk in Job.objects.values_list("pk", flat=True)}
    missing = {(job_id, step) for job_id in ids for step in steps} - set(counts)
    assert len(ids) == jobs
    return counts, missing


def _run_many(start_worker, *, jobs: int, workers: int, kills: int, seed: int, lease: str) -> None:
    Job.objects.bulk_create([Job(name="recorded") for _ in range(jobs)])
    # The lease must outlast the longest stall a live worker can see on a loaded CI
    # machine (SQLite writers queue on one lock): a lapse there is a rescue, not a kill.
    env = {"DBQ_LEASE_SECONDS": lease}
    running = [start_worker(env=env) for _ in range(workers)]
    started = list(running)
    rng = random.Random(seed)
    completed = lambda: Job.objects.filter(state="COMPLETE").count()  # noqa: E731
    for kill in range(kills):
        threshold = jobs * (kill + 1) // (kills + 2)
        wait_for(lambda: completed() >= threshold, what=f"{threshold} jobs to complete")  # noqa: B023
        victim = rng.choice(running)
        victim.signal(signal.SIGKILL)
        victim.wait()
        running.remove(victim)
        running.append(start_worker(env=env))
        started.append(running[-1])
    wait_for(lambda: completed() == jobs, what=f"all {jobs} jobs to complete")
    assert Job.objects.exclude(state="COMPLETE").count() == 0

    counts, missing = _counts_per_step(jobs)
    assert not missing, f"steps that never ran: {sorted(missing)[:5]}"
    extra = sum(count - 1 for count in counts.values())
    # A kill interrupts at most the one step its worker was running.
    assert extra <= kills, (collections.Counter(counts.values()), _claim_trouble(started))
    for worker in running:
        assert worker.process.poll() is None, worker.log()[-3000:]
        worker.signal(signal.SIGTERM)
        assert worker.wait() == 0
        assert "Traceback" not in worker.log(), worker.log()[-3000:]


def _claim_trouble(workers) -> str:
    """The workers' log lines that explain a step running twice (shown when a test fails)."""
    words = ("Rescued", "Lost the claim", "Giving up", "Database error")
    lines = [
        f"{worker.pid}: {line}"
        for worker in workers
        for line in worker.log().splitlines()
        if any(word in line for word in words)
    ]
    return "\n".join(lines[-40:])


def test_many_workers_with_random_kill_9_every_job_completes_each_step_once(start_worker):
    _run_many(start_worker, jobs=1000, workers=4, kills=3, seed=20261127, lease="8")


def test_four_workers_run_every_step_exactly_once(start_worker):
    """No kills: nothing runs twice, on SQLite too (no "database is locked" crash)."""
    _run_many(start_worker, jobs=300, workers=4, kills=0, seed=0, lease="30")


def test_sigstop_past_the_lease_then_sigcont_late_writes_change_nothing(start_worker):
    # Long enough that the test cannot miss the step; the rerun elsewhere is short.
    job = Job.objects.create(name="long_marked", workspace={"sleep": 10})
    first = start_worker(env=SHORT_LEASE)
    wait_for(lambda: in_long_step(job), what="the first worker to be in the long step")
    first.signal(signal.SIGSTOP)
    try:
        Job.objects.filter(pk=job.pk).update(workspace={"sleep": 0.1})
        second = start_worker(env=SHORT_LEASE)
        wait_for(state_is(job, "COMPLETE"), what="the job to be rescued and completed")
        finished = row(job)
    finally:
        first.signal(signal.SIGCONT)
    # The paused worker wakes up, finishes its step, and finds its claim gone.
    wait_for(lambda: f"Lost the claim on job {job.pk}" in first.log(), what="the lost claim")
    assert row(job) == finished
    assert finished["next_task"] == ""
    # Its step ran (at-least-once), but it changed nothing and the worker lives on.
    assert runs(job) == {"a": 1, "start": 2, "end": 2, "b": 1}
    assert first.process.poll() is None
    other = Job.objects.create(name="noop")
    wait_for(state_is(other, "COMPLETE"), what="a later job to complete")
    for worker in (first, second):
        worker.signal(signal.SIGTERM)
        assert worker.wait() == 0
