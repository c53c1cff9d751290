"""Workflows run by real workers: joins run once, kills do not strand them, big fan-ins finish.

The jobs record what they run (tests_execution); every wait is bounded, nothing is timed.
"""

import signal

import pytest
from django.db import transaction

from django_dbq.models import Job
from django_dbq.workflows import Workflow
from tests.conftest import wait_for
from tests.helpers import release, row, runs
from tests.models import Execution

pytestmark = [pytest.mark.processes, pytest.mark.django_db(transaction=True)]

ENV = {"DJANGO_SETTINGS_MODULE": "tests.settings_guarantees", "DBQ_POLL_INTERVAL": "0.1"}


def state(job: Job) -> str:
    return row(job)["state"]


def test_the_join_runs_once_when_its_parents_end_together_on_different_workers(
    start_worker, held_jobs
):
    workers = [
        start_worker(env=ENV),
        start_worker("--concurrency", "2", "--mode", "threads", env=ENV),
    ]
    flow = Workflow(name="join")
    parents = [flow.add("held") for _ in range(3)]
    join = flow.add("recorded", after=parents)
    flow.enqueue()
    wait_for(lambda: all(runs(job)["held"] == 1 for job in parents), what="the parents to run")
    pids = Execution.objects.filter(step="held").values_list("pid", flat=True)
    assert len(set(pids)) > 1  # on more than one worker process
    assert state(join) == "WAITING"
    with transaction.atomic():  # released at the same instant
        for job in parents:
            release(job)
    wait_for(lambda: state(join) == "COMPLETE", what="the join")
    assert runs(join) == {"a": 1, "b": 1, "c": 1}
    assert flow.status()["state"] == "complete"
    for worker in workers:
        worker.signal(signal.SIGTERM)
        assert worker.wait() == 0, worker.log()[-3000:]


def test_a_worker_killed_in_the_last_parent_leaves_the_join_to_run_after_the_rescue(
    start_worker, held_jobs
):
    env = {**ENV, "DBQ_LEASE_SECONDS": "3"}
    first = Job.objects.create(name="noop")
    last = Job.objects.create(name="held")
    join = Job.objects.create(name="recorded", depends_on=[first, last])
    victim = start_worker(env=env)
    wait_for(lambda: runs(last)["held"] == 1 and state(first) == "COMPLETE", what="the last parent")
    assert (state(join), row(join)["waiting_for"]) == ("WAITING", 1)
    victim.signal(signal.SIGKILL)
    victim.wait()
    release(last)  # its rerun goes straight through
    survivor = start_worker(env=env)
    wait_for(lambda: state(join) == "COMPLETE", what="the rescue, the last parent, then the join")
    assert row(last)["attempts"] == 2
    assert runs(join) == {"a": 1, "b": 1, "c": 1}
    survivor.signal(signal.SIGTERM)
    assert survivor.wait() == 0, survivor.log()[-3000:]


def test_a_fan_out_and_in_of_ten_thousand_jobs_runs_every_part_and_the_join_once(start_worker):
    with transaction.atomic():
        flow = Workflow(name="big")
        parts = [flow.add("noop") for _ in range(10_000)]
        join = flow.add("recorded", after=parts)
        flow.enqueue()  # one call
    assert row(join)["waiting_for"] == 10_000
    workers = [
        start_worker(env=ENV),
        start_worker("--concurrency", "4", "--mode", "threads", env=ENV),
    ]
    wait_for(lambda: state(join) == "COMPLETE", what="10,000 parts, then the join", timeout=900)
    assert Job.objects.filter(workflow=flow, state="COMPLETE").count() == 10_001
    assert runs(join) == {"a": 1, "b": 1, "c": 1}
    joined = row(join)
    last_part = Job.objects.filter(workflow=flow, name="noop").order_by("-finished_at").first()
    assert joined["started_at"] >= last_part.finished_at
    assert flow.status()["state"] == "complete"
    for worker in workers:
        worker.signal(signal.SIGTERM)
        assert worker.wait() == 0, worker.log()[-3000:]
