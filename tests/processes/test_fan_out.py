"""Dynamic fan-out under real workers: every mode, and a worker killed in the adding step."""

import signal

import pytest

from django_dbq.models import Job
from django_dbq.workflows import Dependency, Workflow
from tests.conftest import wait_for
from tests.helpers import row, runs
from tests.models import Execution

pytestmark = [pytest.mark.processes, pytest.mark.django_db(transaction=True)]

ENV = {"DBQ_POLL_INTERVAL": "0.1"}
MODES = {
    "single": (),
    "threads": ("--mode", "threads", "--concurrency", "3"),
    "async": ("--mode", "async", "--concurrency", "3"),
}


def split_then_join(parts: int, **knobs) -> tuple[Workflow, Job, Job]:
    flow = Workflow(name="fan-out")
    splitter = flow.add("splits", workspace={"parts": parts, **knobs})
    join = flow.add("recorded", after=[splitter])
    flow.enqueue()
    return flow, splitter, join


def joined_after_every_part(flow: Workflow, join: Job) -> bool:
    parts = {str(pk) for pk in flow.jobs.filter(name="part").values_list("pk", flat=True)}
    records = list(Execution.objects.order_by("id").values_list("job_id", flat=True))
    return parts <= set(records[: records.index(str(join.pk))])


@pytest.mark.parametrize("mode", MODES)
def test_a_step_fans_out_and_the_join_waits_for_every_part(start_worker, mode):
    # enqueue() inside the step: the worker still writes the parts with the checkpoint.
    flow, splitter, join = split_then_join(20, enqueue=True)
    worker = start_worker(*MODES[mode], env=ENV)
    wait_for(lambda: row(join)["state"] == "COMPLETE", what="the parts, then the join")
    assert flow.jobs.filter(name="part", state="COMPLETE").count() == 20
    assert runs(join) == {"a": 1, "b": 1, "c": 1}
    assert joined_after_every_part(flow, join)
    assert Dependency.objects.filter(job=join).count() == 21
    assert flow.status()["state"] == "complete"
    worker.signal(signal.SIGTERM)
    assert worker.wait() == 0, worker.log()[-3000:]


def test_a_worker_killed_after_adding_leaves_no_part_and_the_rerun_adds_them_once(start_worker):
    flow, splitter, join = split_then_join(10, hold=True)
    env = {**ENV, "DBQ_LEASE_SECONDS": "3"}
    victim = start_worker(env=env)
    wait_for(lambda: runs(splitter)["split"] == 1, what="the first split")
    # Added, but not written: the parts land with the step's checkpoint.
    assert flow.jobs.filter(name="part").count() == 0
    victim.signal(signal.SIGKILL)
    victim.wait()
    survivor = start_worker(env=env)
    wait_for(lambda: row(join)["state"] == "COMPLETE", what="the rescue, the parts, the join")
    assert runs(splitter) == {"split": 2, "b": 1}
    assert flow.jobs.filter(name="part").count() == 10
    assert runs(join) == {"a": 1, "b": 1, "c": 1}
    assert joined_after_every_part(flow, join)
    survivor.signal(signal.SIGTERM)
    assert survivor.wait() == 0, survivor.log()[-3000:]
