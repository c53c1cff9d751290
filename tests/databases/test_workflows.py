"""Workflows and dependencies, driven through the engine in-process (workers: tests/processes)."""

import pytest
from django.db import transaction

from django_dbq import engine, signals
from django_dbq.models import Job
from django_dbq.workflows import CycleError, Dependency, Workflow
from tests.helpers import claimer

pytestmark = [pytest.mark.database, pytest.mark.django_db(transaction=True)]


def state(job: Job) -> str:
    return Job.objects.get(pk=job.pk).state


def run(job: Job, *, outcome: str = "COMPLETE") -> None:
    """Claim ``job`` (the next one of its queue) and end it as ``outcome``."""
    (claimed,) = claimer(job.queue_name, worker_id="runner").claim(1)
    assert claimed.pk == job.pk
    if outcome == "COMPLETE":
        assert engine.checkpoint(claimed, "")
    else:
        assert engine.fail(claimed, RuntimeError("boom"), None)


def diamond() -> tuple[Workflow, list[Job]]:
    """a, then b and c at once, then d once both completed."""
    flow = Workflow(name="diamond")
    a = flow.add("noop")
    b = flow.add("noop", after=[a])
    c = flow.add("noop", after=[a])
    d = flow.add("noop", after=[b, c])
    flow.enqueue()
    return flow, [a, b, c, d]


def test_a_workflow_runs_in_dependency_order_and_finishes():
    finished = []

    def note(workflow, **kwargs):
        finished.append(workflow.pk)

    signals.workflow_completed.connect(note)
    flow, (a, b, c, d) = diamond()
    assert [state(job) for job in (a, b, c, d)] == ["NEW", "WAITING", "WAITING", "WAITING"]
    run(a)
    assert [state(job) for job in (b, c, d)] == ["NEW", "NEW", "WAITING"]
    run(b)
    assert state(d) == "WAITING"  # still waits for c
    run(c)
    assert state(d) == "NEW"
    assert finished == []
    run(d)
    signals.workflow_completed.disconnect(note)
    assert finished == [flow.pk]  # sent once, when the last job ended
    assert flow.status()["state"] == "complete"
    assert flow.status()["counts"]["COMPLETE"] == 4


def test_a_failed_dependency_cancels_its_subtree_unless_the_edge_says_run():
    flow = Workflow()
    a = flow.add("noop")
    b = flow.add("noop", after=[a])
    c = flow.add("noop", after=[b])
    cleanup = flow.add("noop", after=[a], on_failure="run")
    flow.enqueue()
    run(a, outcome="FAILED")
    assert (state(b), state(c), state(cleanup)) == ("CANCELLED", "CANCELLED", "NEW")
    assert str(a.pk) in Job.objects.get(pk=b.pk).error
    run(cleanup)
    assert flow.status()["state"] == "failed"


def test_retrying_the_failed_job_puts_its_cancelled_dependents_back_to_waiting():
    flow = Workflow()
    a = flow.add("noop")
    b = flow.add("noop", after=[a])
    c = flow.add("noop", after=[b])
    flow.enqueue()
    run(a, outcome="FAILED")
    Job.objects.get(pk=a.pk).retry()
    assert (state(a), state(b), state(c)) == ("READY", "WAITING", "WAITING")
    assert Workflow.objects.get(pk=flow.pk).finished_at is None
    run(a)
    run(b)
    run(c)
    assert flow.status()["state"] == "complete"


def test_depends_on_a_running_job_is_followed_when_it_ends():
    a = Job.objects.create(name="noop")
    (held,) = claimer().claim(1)  # a runs; the instance knows of no dependents
    b = Job.objects.create(name="noop", depends_on=[a])
    assert state(b) == "WAITING" and held.dependents is None
    assert engine.checkpoint(held, "")
    assert state(b) == "NEW"


def test_depends_on_finished_jobs_starts_or_cancels_at_once():
    done = Job.objects.create(name="noop", queue_name="first")
    run(done)
    assert state(Job.objects.create(name="noop", depends_on=[done])) == "NEW"
    failed = Job.objects.create(name="noop", queue_name="second")
    run(failed, outcome="FAILED")
    assert state(Job.objects.create(name="noop", depends_on=[failed])) == "CANCELLED"
    runs_anyway = Job.objects.create(name="noop", depends_on=[failed], on_failure="run")
    assert state(runs_anyway) == "NEW"


def test_cancelling_a_waiting_job_cancels_what_waits_for_it():
    a = Job.objects.create(name="noop")
    b = Job.objects.create(name="noop", depends_on=[a])
    c = Job.objects.create(name="noop", depends_on=[b])
    assert b.cancel()
    assert (state(a), state(b), state(c)) == ("NEW", "CANCELLED", "CANCELLED")


def test_cancel_a_whole_workflow():
    flow, jobs = diamond()
    (running,) = claimer().claim(1)
    assert flow.cancel() == 4
    assert [state(job) for job in jobs[1:]] == ["CANCELLED"] * 3
    assert Job.objects.get(pk=running.pk).cancel_requested
    assert engine.cancel_running(running)
    assert flow.status()["state"] == "failed"


def test_cycles_and_bad_input_are_refused_and_nothing_is_written():
    flow = Workflow()
    a = flow.add("noop")
    b = flow.add("noop", after=[a])
    flow._pending[0][1].append(b)  # a after b, b after a
    with pytest.raises(CycleError):
        flow.enqueue()
    with pytest.raises(ValueError, match="on_failure"):
        Workflow().add("noop", on_failure="ignore")
    with pytest.raises(TypeError):
        Workflow().add("noop", after=["not a job"])
    flow = Workflow()
    flow.add("noop")
    flow.add("noop", queue_name="")  # refused when the jobs are prepared
    with pytest.raises(ValueError, match="queue_name"):
        flow.enqueue()
    assert not Job.objects.exists() and not Workflow.objects.exists()
    assert not Dependency.objects.exists()


def test_a_big_fan_out_and_in_enqueues_in_one_call():
    with transaction.atomic():
        flow = Workflow(name="big")
        parts = [flow.add("noop", workspace={"part": i}) for i in range(2000)]
        join = flow.add("noop", after=parts)
        flow.enqueue()
    assert Job.objects.filter(workflow=flow, state="NEW").count() == 2000
    assert Job.objects.get(pk=join.pk).waiting_for == 2000
    assert Dependency.objects.filter(job=join).count() == 2000


def test_delete_old_jobs_keeps_a_live_workflows_finished_jobs():
    flow, (a, b, c, d) = diamond()
    run(a)
    assert Job.objects.delete_old(hours=0) == 0
    for job in (b, c, d):
        run(job)
    assert Job.objects.delete_old(hours=0) == 4


def test_a_parts_completion_takes_as_few_round_trips_as_the_database_allows():
    from django.db import connection
    from django.test.utils import CaptureQueriesContext

    flow = Workflow()
    parts = [flow.add("noop") for _ in range(2)]
    join = flow.add("noop", after=parts)
    flow.enqueue()
    (part, _) = claimer().claim(2)
    with CaptureQueriesContext(connection) as queries:
        assert engine.checkpoint(part, "")
    assert Job.objects.get(pk=join.pk).waiting_for == 1
    # PostgreSQL: the completion, the count-off and its commit in one statement; the others
    # in one transaction of a few.
    expected = {"postgresql": 1}.get(connection.vendor)
    if expected is not None:
        assert len(queries) == expected, [query["sql"] for query in queries]


def test_a_join_reads_what_its_dependencies_left_in_their_workspaces():
    flow = Workflow()
    parts = [flow.add("noop", workspace={"part": index}) for index in range(3)]
    join = flow.add("noop", after=parts)
    flow.enqueue()
    for _ in parts:
        (claimed,) = claimer().claim(1)
        claimed.workspace["rows"] = claimed.workspace["part"] * 10
        assert engine.checkpoint(claimed, "")
    expected = {str(part.pk): {"part": i, "rows": i * 10} for i, part in enumerate(parts)}
    assert Job.objects.get(pk=join.pk).dependency_workspaces() == expected
    assert parts[0].dependency_workspaces() == {}


def test_the_cancel_workflow_command_cancels_and_refuses_bad_ids_changing_nothing():
    from io import StringIO

    from django.core.management import CommandError, call_command

    flow, jobs = diamond()
    with pytest.raises(CommandError, match="not a workflow id"):
        call_command("cancel_workflow", str(flow.pk), "nope")
    with pytest.raises(CommandError, match="No workflow"):
        call_command("cancel_workflow", str(flow.pk), "00000000-0000-4000-8000-000000000000")
    assert {state(job) for job in jobs} == {"NEW", "WAITING"}
    out = StringIO()
    call_command("cancel_workflow", str(flow.pk), stdout=out)
    assert out.getvalue() == f"{flow.pk}: 4 job(s) cancelled or asked to stop\n"
    assert {state(job) for job in jobs} == {"CANCELLED"}
