"""Dynamic fan-out: a running step adds jobs to its own workflow (django_dbq.fan_out)."""

import uuid

import pytest

from django_dbq import signals
from django_dbq.management.commands.worker import Worker
from django_dbq.models import Job
from django_dbq.worker.execution import JobRun
from django_dbq.workflows import Dependency, Workflow
from tests.helpers import claimer, executions, run_steps

pytestmark = [pytest.mark.database, pytest.mark.django_db(transaction=True)]


def split_then_join(parts: int = 3, **knobs) -> tuple[Workflow, Job, Job]:
    flow = Workflow(name="fan-out")
    splitter = flow.add("splits", workspace={"parts": parts, **knobs})
    join = flow.add("recorded", after=[splitter])
    flow.enqueue()
    return flow, splitter, join


def parts_of(flow: Workflow):
    return Job.objects.filter(workflow=flow, name="part")


@pytest.fixture
def created():
    """The jobs ``job_created`` was sent for, in order."""
    seen = []

    def note(sender, job, **kwargs):
        seen.append(job)

    signals.job_created.connect(note)
    yield seen
    signals.job_created.disconnect(note)


@pytest.mark.parametrize("enqueue", [False, True], ids=["add", "add-and-enqueue"])
def test_the_jobs_a_step_adds_run_before_the_workflows_later_jobs(enqueue, created):
    flow, splitter, join = split_then_join(enqueue=enqueue)
    run_steps()
    parts = list(parts_of(flow))
    assert sorted(job.pk for job in created if job.name == "part") == sorted(p.pk for p in parts)
    assert len(parts) == 3
    assert {job.state for job in [*parts, Job.objects.get(pk=join.pk)]} == {"COMPLETE"}
    # The join waited for the parts: its first record comes after every part's.
    order = list(flow.jobs.order_by().values_list("pk", flat=True))
    assert len(order) == 5
    from tests.models import Execution

    records = Execution.objects.order_by("id").values_list("job_id", flat=True)
    first_of_join = list(records).index(str(join.pk))
    assert {str(job.pk) for job in parts} <= set(list(records)[:first_of_join])
    assert executions(join) == ["a", "b", "c"]
    assert Dependency.objects.filter(job=join).count() == 4  # the splitter and its parts
    assert set(Job.objects.get(pk=join.pk).dependency_workspaces()) == {
        str(job.pk) for job in [splitter, *parts]
    }
    assert flow.status()["state"] == "complete"


def test_a_failed_step_adds_nothing_and_its_retry_adds_its_jobs_once():
    flow, splitter, join = split_then_join(fail=True)
    run_steps()
    assert Job.objects.get(pk=splitter.pk).attempts == 2
    assert executions(splitter) == ["split", "split", "b"]
    assert parts_of(flow).count() == 3
    assert Job.objects.get(pk=join.pk).state == "COMPLETE"


def test_a_step_whose_claim_was_lost_adds_nothing(created):
    flow, splitter, join = split_then_join()
    (claimed,) = claimer().claim(1)
    assert claimed.pk == splitter.pk
    Job.objects.filter(pk=splitter.pk).update(lease_token=uuid.uuid4())  # rescued elsewhere
    assert JobRun(claimed, lambda write: write(), lease_seconds=60).run() == "LOST"
    assert executions(splitter) == ["split"]
    assert parts_of(flow).count() == 0
    assert not [job for job in created if job.name == "part"]  # no signal for a rollback
    joined = Job.objects.get(pk=join.pk)
    assert (joined.state, joined.waiting_for) == ("WAITING", 1)


def test_a_step_asked_to_cancel_adds_nothing_and_cancels_the_workflows_later_jobs():
    flow, splitter, join = split_then_join()
    (claimed,) = claimer().claim(1)
    Job.objects.filter(pk=splitter.pk).update(cancel_requested=True)
    JobRun(claimed, lambda write: write(), lease_seconds=60).run()
    assert parts_of(flow).count() == 0
    assert Job.objects.get(pk=splitter.pk).state == "CANCELLED"
    assert Job.objects.get(pk=join.pk).state == "CANCELLED"


def test_a_part_that_fails_for_good_cancels_the_later_jobs():
    flow, splitter, join = split_then_join(parts=2)
    worker = Worker("default")
    worker._process_job()  # the split...
    worker._process_job()  # ...and the splitter's second step; the parts wait to run
    (first, second) = parts_of(flow).order_by("created")
    assert Job.objects.get(pk=join.pk).waiting_for == 2
    Job.objects.filter(pk=first.pk).update(name="flaky", workspace={"permanent": True})
    run_steps()
    assert Job.objects.get(pk=first.pk).state == "FAILED"
    joined = Job.objects.get(pk=join.pk)
    assert joined.state == "CANCELLED"
    assert str(first.pk) in joined.error
    assert flow.status()["state"] == "failed"


def test_outside_a_step_enqueue_writes_at_once():
    flow, splitter, _ = split_then_join()
    more = flow.add("part", workspace={"number": 9})
    flow.enqueue()
    assert Job.objects.get(pk=more.pk).state == "NEW"
    assert parts_of(flow).count() == 1


def test_a_part_that_would_wait_for_a_job_waiting_for_the_step_is_a_cycle_and_fails_it():
    flow = Workflow(name="cycle")
    splitter = flow.add("splits", workspace={"parts": 2})
    join = flow.add("recorded", after=[splitter])
    splitter.workspace["after"] = str(join.pk)  # the parts would wait for the join
    flow.enqueue()
    run_steps()
    failed = Job.objects.get(pk=splitter.pk)
    assert failed.state == "FAILED"
    assert [error["type"] for error in failed.errors] == ["CycleError"] * 3
    assert parts_of(flow).count() == 0
    assert Job.objects.get(pk=join.pk).state == "CANCELLED"


def test_a_second_enqueue_in_a_step_returns_only_the_jobs_added_since():
    flow, splitter, _ = split_then_join()
    (claimed,) = claimer().claim(1)
    from django_dbq import fan_out

    with fan_out.collecting(claimed):
        own = Workflow.objects.get(pk=flow.pk)
        first = own.add("part", workspace={"number": 1})
        assert own.enqueue() == [first]
        second = own.add("part", workspace={"number": 2})
        assert own.enqueue() == [second]
    assert parts_of(flow).count() == 0  # dropped: no checkpoint wrote them
