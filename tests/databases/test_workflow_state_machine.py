"""Dependencies as a state machine: random graphs, outcomes, cancels and retries, real database.

Hypothesis builds jobs that depend on earlier ones (``Job.objects.create(depends_on=)``
and ``Workflow.enqueue()``, either kind of edge), then ends them at random through the
engine (completion, failure, cancel while waiting or running, retry by hand). After
every step the rows must obey the rules of "Workflows" in the README, read from the
rows themselves (no model of them here: ``test_lifecycle_state_machine.py`` has one for
a single job):

- a job waits (``WAITING``) only for a dependency that has not finished, and its
  ``waiting_for`` is the number of its edges not yet counted off;
- a job that may run has had each of its edges counted off (its dependency complete, or
  ended badly behind an ``on_failure="run"`` edge);
- a workflow is marked finished exactly when all of its jobs have finished.

More examples for a long local run: ``DBQ_WORKFLOW_EXAMPLES=300``.
"""

from __future__ import annotations

import os

import pytest
from hypothesis import settings
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, invariant, rule, run_state_machine_as_test

from django_dbq import engine
from django_dbq.models import Job
from django_dbq.workflows import Dependency, Workflow
from tests.helpers import claimer

pytestmark = [pytest.mark.database, pytest.mark.django_db(transaction=True)]

UNFINISHED = ("WAITING", "NEW", "READY", "PROCESSING", "STOPPING")
BAD_ENDS = ("FAILED", "CANCELLED")


class DependencyMachine(RuleBasedStateMachine):
    def __init__(self):
        super().__init__()
        Dependency.objects.all().delete()
        Job.objects.all().delete()
        Workflow.objects.all().delete()
        self.jobs: list = []

    def some(self, picks: list[int]) -> list[Job]:
        return [self.jobs[pick % len(self.jobs)] for pick in picks] if self.jobs else []

    @rule(parents=st.lists(st.integers(0, 20), max_size=3), run=st.booleans())
    def create(self, parents, run):
        depends_on = list({job.pk: job for job in self.some(parents)}.values())
        on_failure = "run" if run else "cancel"
        if depends_on:
            job = Job.objects.create(name="noop", depends_on=depends_on, on_failure=on_failure)
        else:
            job = Job.objects.create(name="noop")
        self.jobs.append(job)

    @rule(size=st.integers(1, 4), parents=st.lists(st.integers(0, 20), max_size=2))
    def enqueue_a_workflow(self, size, parents):
        flow = Workflow()
        first = flow.add("noop", after=self.some(parents))
        added = [first, *[flow.add("noop", after=[first]) for _ in range(size - 1)]]
        added.append(flow.add("noop", after=added, on_failure="run"))
        self.jobs.extend(flow.enqueue())

    @rule(outcome=st.sampled_from(["complete", "fail", "cancel"]))
    def run_one(self, outcome):
        claimed = claimer().claim(1)
        if not claimed:
            return
        (job,) = claimed
        if outcome == "complete":
            assert engine.checkpoint(job, "")
        elif outcome == "fail":
            assert engine.fail(job, RuntimeError("boom"), None)
        else:
            assert job.cancel()
            assert engine.cancel_running(job)

    @rule(pick=st.integers(0, 20))
    def cancel(self, pick):
        for job in self.some([pick]):
            Job.objects.get(pk=job.pk).cancel()

    @rule(pick=st.integers(0, 20))
    def retry(self, pick):
        for job in self.some([pick]):
            fresh = Job.objects.get(pk=job.pk)
            if fresh.state in BAD_ENDS:
                blocked = Dependency.objects.filter(job=fresh, blocked=True).exists()
                if blocked:  # a dependency that ended badly still holds it back: refused
                    with pytest.raises(ValueError, match="retry those"):
                        fresh.retry()
                    assert Job.objects.get(pk=job.pk).state == fresh.state
                else:
                    fresh.retry()

    @invariant()
    def jobs_wait_only_for_what_has_not_finished(self):
        states = dict(Job.objects.values_list("pk", "state"))
        waiting_for = dict(Job.objects.values_list("pk", "waiting_for"))
        edges: dict = {}
        for child, parent, on_failure, satisfied in Dependency.objects.values_list(
            "job_id", "depends_on_id", "on_failure", "satisfied"
        ):
            edges.setdefault(child, []).append((states[parent], on_failure, satisfied))
        for pk, state in states.items():
            mine = edges.get(pk, [])
            if state == "WAITING":
                assert any(parent in UNFINISHED for parent, _, _ in mine), f"{pk} waits for nothing"
                bad = [p for p, how, _ in mine if p in BAD_ENDS and how == "cancel"]
                assert not bad, f"{pk} waits behind a dependency that ended {bad}"
                unsatisfied = sum(1 for _, _, satisfied in mine if not satisfied)
                assert waiting_for[pk] == unsatisfied, f"{pk} counts {waiting_for[pk]}"
            elif state in ("NEW", "READY", "PROCESSING", "STOPPING"):
                # Each edge was counted off: its dependency completed, or ended badly under
                # an on_failure="run" edge (a retry of that one later does not hold it back).
                for parent, how, satisfied in mine:
                    assert satisfied, f"{pk} is {state} while a dependency is {parent} ({how})"

    @invariant()
    def a_workflow_is_finished_when_its_jobs_are(self):
        for flow in Workflow.objects.all():
            states = set(Job.objects.filter(workflow=flow).values_list("state", flat=True))
            finished = not states & set(UNFINISHED)
            assert (flow.finished_at is not None) == finished, f"{flow.pk}: {states}"
            if finished:
                assert flow.failed == bool(states - {"COMPLETE"})


EXAMPLES = int(os.environ.get("DBQ_WORKFLOW_EXAMPLES", "30"))


@pytest.mark.timeout(1200)
def test_dependencies_state_machine():
    run_state_machine_as_test(
        DependencyMachine,
        settings=settings(
            max_examples=EXAMPLES, stateful_step_count=25, deadline=None, print_blob=True
        ),
    )
