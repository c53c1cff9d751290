"""The job lifecycle as a state machine: random interleavings of every transition, real database.

Hypothesis drives real jobs through creates, claims, heartbeats, checkpoints,
completions, failures, releases, a task's own ``job.save()``, ``retry()``, ``cancel()``,
lapsed leases and rescues, ``mark_stopping`` and ``delete_old``, while a small
in-memory model predicts each row. After every step the rows must agree with the
model and with the guarantees (README "Guarantees", "Unique jobs").

``Driver`` is the only place that knows how each action maps onto the library:
adapt it when internals move. More examples for a long local run:
``DBQ_LIFECYCLE_EXAMPLES=500``.
"""

from __future__ import annotations

import contextlib
import datetime
import os
import uuid
from dataclasses import dataclass, field

import pytest
from django.db import connection
from hypothesis import settings
from hypothesis import strategies as st
from hypothesis.stateful import (
    RuleBasedStateMachine,
    initialize,
    invariant,
    precondition,
    rule,
    run_state_machine_as_test,
)

from django_dbq import conf, leases
from django_dbq.definitions import get_definition
from django_dbq.engine import Claimer, mark_stopping, renew_leases
from django_dbq.exceptions import DuplicateJob, JobLost
from django_dbq.models import Job
from django_dbq.worker.execution import JobRun
from django_dbq.worker.outcomes import Cancelled
from tests.helpers import rescue_lapsed_jobs

pytestmark = [pytest.mark.database, pytest.mark.django_db(transaction=True)]

LEASE = 60.0  # long: a lease lapses only when the test says so
NAMES = ("lifecycle", "lifecycle_retrying")  # 1 attempt and 2 steps; 2 attempts and 3 steps
KEYS = (None, None, "k1", "k2")
RUNNABLE, ACTIVE = ("NEW", "READY"), ("PROCESSING", "STOPPING")
FINISHED = ("COMPLETE", "FAILED", "CANCELLED")
IGNORED = {"modified"}  # bookkeeping only: not part of "a write changed nothing"
STALE = "a write made with an old claim changed a row"
OLD_WRITES = ("heartbeat", "finish_step", "fail", "release", "task_save", "mark_stopping")


class Driver:
    """Each action of the machine as the library performs it (the one place to adapt)."""

    using = "default"

    def create(self, name: str, key: str | None) -> Job:
        return Job.objects.create(name=name, unique_key=key)

    def claim(self) -> Job | None:
        jobs = Claimer(Job.objects.using(self.using), ["default"], "machine", LEASE).claim(1)
        return jobs[0] if jobs else None

    def heartbeat(self, job: Job) -> None:
        renew_leases([job], LEASE, self.using)

    def _run(self, job: Job) -> JobRun:
        return JobRun(job, lambda write: write(), lease_seconds=LEASE)

    def checkpoint(self, job: Job, following: str) -> None:
        self._run(job).outcome.checkpoint(following)

    def complete(self, job: Job) -> None:
        self._run(job).outcome.checkpoint("")

    def fail(self, job: Job) -> None:
        self._run(job).outcome.fail(
            job.next_task, RuntimeError("step broke"), "", get_definition(job.name)
        )

    def release(self, job: Job) -> None:
        self._run(job).outcome.release()

    def run_to_end(self, job: Job) -> None:
        self._run(job).run()

    def task_save(self, job: Job) -> None:
        job.save()

    def retry(self, pk: uuid.UUID) -> None:
        Job.objects.get(pk=pk).retry()

    def cancel(self, pk: uuid.UUID) -> bool:
        return Job.objects.get(pk=pk).cancel()

    def lapse(self, pk: uuid.UUID) -> None:
        """The clock: the lease ran out (every lease is long, so only this lapses one)."""
        past = leases.now(self.using) - datetime.timedelta(hours=1)
        Job.objects.filter(pk=pk).update(lease_expires_at=past)

    def rescue(self) -> int:
        return rescue_lapsed_jobs(self.using)

    def mark_stopping(self, job: Job) -> int:
        return mark_stopping(job, self.using)

    def delete_old(self) -> int:
        return Job.objects.delete_old(hours=0)

    @contextlib.contextmanager
    def after_first_write(self, action):
        """Run ``action`` right after the first statement that writes a job (an interleaving)."""
        pending = [action]

        def wrapper(execute, sql, params, many, context):
            result = execute(sql, params, many, context)
            if pending and sql.lstrip().upper().startswith(("UPDATE", "DELETE")):
                pending.pop()()
            return result

        with connection.execute_wrapper(wrapper):
            yield


@dataclass
class Expected:
    """What the model expects one job's row to hold."""

    name: str
    key: str | None  # the key it was created with: it holds it while it waits or runs
    state: str = "NEW"
    token: uuid.UUID | None = None
    attempts: int = 0
    next_task: str = ""
    workspace: dict = field(default_factory=dict)
    cancel_requested: bool = False
    cancel_accepted: bool = False  # cancel() returned True (and no retry since)
    lapsed: bool = False

    @property
    def tasks(self) -> tuple[str, ...]:
        return get_definition(self.name).tasks

    def let_go(self, state: str) -> None:
        self.state, self.token, self.lapsed = state, None, False


def rows() -> dict:
    return {row["id"]: row for row in Job.objects.values()}


def same_rows(before: dict, after: dict) -> bool:
    strip = lambda table: {  # noqa: E731
        pk: {k: v for k, v in row.items() if k not in IGNORED} for pk, row in table.items()
    }
    return strip(before) == strip(after)


class LifecycleMachine(RuleBasedStateMachine):
    def __init__(self):
        super().__init__()
        Job.objects.all().delete()
        self.driver = Driver()
        self.jobs: dict[uuid.UUID, Expected] = {}
        self.held: list[Job] = []  # every instance a worker ever claimed, stale ones too
        self.counter = 0

    # -- helpers -------------------------------------------------------------

    def pick(self, index: int) -> uuid.UUID:
        return list(self.jobs)[index % len(self.jobs)]

    def holds_claim(self, job: Job) -> bool:
        expected = self.jobs.get(job.pk)
        return bool(expected and job.lease_token and job.lease_token == expected.token)

    def key_taken(self, name: str, key: str | None, other_than=None) -> bool:
        return key is not None and any(
            e.name == name and e.key == key and e.state not in FINISHED and pk != other_than
            for pk, e in self.jobs.items()
        )

    def finish(self, expected: Expected, state: str) -> None:
        expected.let_go(state)
        if state == "CANCELLED" and expected.cancel_requested:
            expected.cancel_accepted = True

    def changes_nothing(self, job: Job, write, may_refuse=(JobLost, Cancelled)) -> bool:
        """Make ``write`` with ``job`` (an instance without the current claim): did no row change?

        ``may_refuse``: exceptions the write may raise instead (it must still change nothing).

        Each rule asserts on its own line, so Hypothesis reports each broken write apart.
        """
        before = rows()
        with contextlib.suppress(*may_refuse):
            write(job)
        return same_rows(before, rows())

    # -- people: create, cancel, retry, clean up -----------------------------

    @initialize(
        jobs=st.lists(
            st.tuples(st.sampled_from(NAMES), st.sampled_from(KEYS)), min_size=1, max_size=3
        )
    )
    def some_jobs(self, jobs):
        """Start with a few jobs, so that no example is spent on an empty queue."""
        for name, key in jobs:
            self.create(name, key)

    @rule(name=st.sampled_from(NAMES), key=st.sampled_from(KEYS))
    def create(self, name, key):
        taken = self.key_taken(name, key)
        try:
            job = self.driver.create(name, key)
        except DuplicateJob:
            assert taken, f"{key!r} blocked a create though no job holding it waits or runs"
            return
        # Failed before retry() gave the job its unique_key back (a retried
        # job waited without it, and a second job with its key could be created).
        assert not taken, f"a second {name} job with key {key!r} was created"
        self.jobs[job.pk] = Expected(name, key, next_task=job.next_task)

    @precondition(lambda self: self.jobs)
    @rule(index=st.integers(0, 9))
    def cancel(self, index):
        pk = self.pick(index)
        expected, before = self.jobs[pk], rows()
        accepted = self.driver.cancel(pk)
        assert accepted == (expected.state not in FINISHED), f"cancel() of a {expected.state} job"
        if expected.state in RUNNABLE:
            self.finish(expected, "CANCELLED")
            expected.cancel_accepted = True
        elif expected.state in ACTIVE:
            expected.cancel_requested = expected.cancel_accepted = True
        else:
            assert same_rows(before, rows()), "cancel() of a finished job changed it"

    # Failed while cancel() was two UPDATEs (a release that
    # landed between them made cancel() return False for a job that had not finished).
    @precondition(lambda self: self.claimed())
    @rule(index=st.integers(0, 9), action=st.sampled_from(["release", "fail", "finish_step"]))
    def cancel_while_the_worker_lets_go(self, index, action):
        job = self.claimed()[index % len(self.claimed())]
        let_go = {"release": self.release, "fail": self.fail, "finish_step": self.finish_step}
        with self.driver.after_first_write(lambda: let_go[action](index)):
            accepted = self.driver.cancel(job.pk)
        expected = self.jobs[job.pk]
        state = Job.objects.get(pk=job.pk).state
        if not accepted:
            assert state in FINISHED, f"cancel() returned False but the job is {state}"
            return
        assert state != "COMPLETE", "cancel() returned True, yet the job completed"
        expected.cancel_accepted = True
        if state == "CANCELLED":
            self.finish(expected, "CANCELLED")
        else:
            expected.cancel_requested = True

    @precondition(lambda self: self.jobs)
    @rule(index=st.integers(0, 9))
    def retry(self, index):
        pk = self.pick(index)
        expected, before = self.jobs[pk], rows()
        if expected.state not in ("FAILED", "CANCELLED"):
            with pytest.raises(ValueError):
                self.driver.retry(pk)
            assert same_rows(before, rows()), "a refused retry() changed a row"
            return
        if self.key_taken(expected.name, expected.key, other_than=pk):
            # Another job took the key meanwhile: the retry must be refused, changing nothing.
            # Failed before retry() gave the job its unique_key back.
            with pytest.raises((DuplicateJob, ValueError)):
                self.driver.retry(pk)
            assert same_rows(before, rows()), "a refused retry() changed a row"
            return
        self.driver.retry(pk)
        expected.state, expected.attempts = "READY", 0
        expected.next_task = expected.next_task or expected.tasks[0]
        expected.cancel_requested = expected.cancel_accepted = False

    @rule()
    def delete_old(self):
        finished = {pk for pk, e in self.jobs.items() if e.state in FINISHED}
        deleted = self.driver.delete_old()
        left = set(rows())
        assert not (set(self.jobs) - finished) - left, "delete_old deleted an unfinished job"
        assert deleted == len(finished) and not finished & left
        for pk in finished:
            del self.jobs[pk]

    # -- workers -------------------------------------------------------------

    @rule()
    def claim(self):
        job = self.driver.claim()
        runnable = [pk for pk, e in self.jobs.items() if e.state in RUNNABLE]
        if job is None:
            assert not runnable, "a runnable job was not claimed"
            return
        assert job.pk in runnable, f"claimed a job that was {self.jobs[job.pk].state}"
        expected = self.jobs[job.pk]
        # A job resumes at its step with the workspace its last checkpoint saved.
        assert (job.next_task, job.workspace) == (expected.next_task, expected.workspace)
        expected.state, expected.token, expected.lapsed = "PROCESSING", job.lease_token, False
        expected.attempts += 1
        self.held.append(job)

    def claimed(self) -> list[Job]:
        """The instances whose claim is current (what live workers hold)."""
        return [job for job in self.held if self.holds_claim(job)]

    def old_instances(self) -> list[Job]:
        """Instances whose claim is gone (rescued, released, finished, deleted)."""
        return [job for job in self.held if not self.holds_claim(job)]

    def step_write(self, job: Job):
        """What a worker writes when its step returns: a checkpoint, or the completion."""
        self.counter += 1
        tasks = get_definition(job.name).tasks
        following = tasks[tasks.index(job.next_task) + 1 :] if job.next_task in tasks else []
        job.workspace = {**(job.workspace or {}), "checkpoint": self.counter}
        if following:
            return following[0], lambda job: self.driver.checkpoint(job, following[0])
        return "", self.driver.complete

    @precondition(lambda self: self.claimed())
    @rule(index=st.integers(0, 9))
    def heartbeat(self, index):
        job = self.claimed()[index % len(self.claimed())]
        self.driver.heartbeat(job)
        self.jobs[job.pk].lapsed = False

    @precondition(lambda self: self.claimed())
    @rule(index=st.integers(0, 9))
    def finish_step(self, index):
        """The worker finished its step: checkpoint (the cancel flag checked), or complete."""
        job = self.claimed()[index % len(self.claimed())]
        following, write = self.step_write(job)
        expected = self.jobs[job.pk]
        with contextlib.suppress(JobLost, Cancelled):  # Cancelled: ended as someone asked
            write(job)
        if following:
            expected.next_task, expected.workspace = following, job.workspace
            if expected.cancel_requested:
                self.finish(expected, "CANCELLED")
            else:
                expected.lapsed = False
        elif expected.cancel_requested:
            row = Job.objects.get(pk=job.pk)
            # Failed before completion honoured a cancel request (it ended COMPLETE).
            assert row.state == "CANCELLED", "cancel() had returned True, yet the job completed"
            expected.next_task, expected.workspace = row.next_task, row.workspace
            self.finish(expected, "CANCELLED")
        else:
            expected.next_task, expected.workspace = "", job.workspace
            self.finish(expected, "COMPLETE")

    @precondition(lambda self: self.claimed())
    @rule(index=st.integers(0, 9))
    def fail(self, index):
        job = self.claimed()[index % len(self.claimed())]
        expected = self.jobs[job.pk]
        self.driver.fail(job)
        if expected.cancel_requested and Job.objects.get(pk=job.pk).state == "CANCELLED":
            self.finish(expected, "CANCELLED")  # a failed step with a cancel pending may end it
        elif expected.attempts < get_definition(expected.name).max_attempts:
            expected.let_go("READY")
        else:
            self.finish(expected, "FAILED")

    @precondition(lambda self: self.claimed())
    @rule(index=st.integers(0, 9))
    def release(self, index):
        job = self.claimed()[index % len(self.claimed())]
        self.driver.release(job)
        expected = self.jobs[job.pk]
        expected.let_go("READY")
        expected.attempts = max(expected.attempts - 1, 0)

    # Failed while a task's save() of a claimed job wrote every column back
    # (old state, lease, cancel flag and token).
    @precondition(lambda self: self.claimed())
    @rule(index=st.integers(0, 9))
    def task_saves_its_job(self, index):
        job = self.claimed()[index % len(self.claimed())]
        self.counter += 1
        job.workspace = {**(job.workspace or {}), "saved_by_task": self.counter}
        before = rows()[job.pk]
        with contextlib.suppress(Exception):  # refusing the save is allowed; changing it is not
            self.driver.task_save(job)
        after = rows()[job.pk]
        owned = ("state", "lease_token", "lease_expires_at", "cancel_requested", "attempts")
        assert {k: after[k] for k in owned} == {k: before[k] for k in owned}, (
            "a task's save() changed the job's state, claim, lease or cancel flag"
        )
        self.jobs[job.pk].workspace = after["workspace"]

    # Failed while mark_stopping() of an instance without a claim
    # matched the NULL token of a READY job.
    @precondition(lambda self: self.claimed())
    @rule(index=st.integers(0, 9))
    def mark_stopping(self, index):
        job = self.claimed()[index % len(self.claimed())]
        self.driver.mark_stopping(job)
        self.jobs[job.pk].state = "STOPPING"

    @precondition(lambda self: self.old_instances())
    @rule(index=st.integers(0, 9), write=st.sampled_from(OLD_WRITES))
    def write_with_an_old_instance(self, index, write):
        """A worker whose claim is gone writes anyway: nothing may change.

        One assertion per write, so Hypothesis reports each broken write apart.
        """
        job = self.old_instances()[index % len(self.old_instances())]
        if write == "heartbeat":
            assert self.changes_nothing(job, self.driver.heartbeat), STALE
        elif write == "finish_step":
            assert self.changes_nothing(job, self.step_write(job)[1]), STALE
        elif write == "fail":
            assert self.changes_nothing(job, self.driver.fail), STALE
        elif write == "release":
            assert self.changes_nothing(job, self.driver.release), STALE
        elif write == "task_save":
            job.workspace = {**(job.workspace or {}), "saved_by_task": self.counter}
            # Failed while a task's save() of a claimed job wrote every column back (and
            # re-inserted a deleted job).
            assert self.changes_nothing(job, self.driver.task_save, (Exception,)), STALE
        else:
            # Failed while a released instance's None token matched a READY job's NULL token.
            assert self.changes_nothing(job, self.driver.mark_stopping), STALE

    # -- the clock and the sweeper -------------------------------------------

    @precondition(lambda self: any(e.state in ACTIVE for e in self.jobs.values()))
    @rule(index=st.integers(0, 9))
    def lease_lapses(self, index):
        active = [pk for pk, e in self.jobs.items() if e.state in ACTIVE]
        pk = active[index % len(active)]
        self.driver.lapse(pk)
        self.jobs[pk].lapsed = True

    @rule()
    def rescue(self):
        lapsed = [e for e in self.jobs.values() if e.state in ACTIVE and e.lapsed]
        assert self.driver.rescue() == len(lapsed)
        limit = conf.get("DBQ_RESCUE_MAX_ATTEMPTS")
        for expected in lapsed:
            max_attempts = get_definition(expected.name).max_attempts
            gives_up = expected.attempts >= max(max_attempts, limit)
            self.finish(expected, "FAILED") if gives_up else expected.let_go("READY")

    @rule()
    def every_worker_dies_and_one_drains_the_queue(self):
        """Drive every job to its end: leases lapse, a rescue, then a worker runs each job."""
        for pk, expected in self.jobs.items():
            if expected.state in ACTIVE:
                self.driver.lapse(pk)
                expected.lapsed = True
        self.rescue()
        while (job := self.driver.claim()) is not None:
            expected = self.jobs[job.pk]
            assert (job.next_task, job.workspace) == (expected.next_task, expected.workspace)
            self.driver.run_to_end(job)
            row = Job.objects.get(pk=job.pk)
            expected.attempts += 1
            self.finish(expected, "CANCELLED" if expected.cancel_requested else "COMPLETE")
            expected.next_task, expected.workspace = row.next_task, row.workspace

    # -- invariants (after every step) ---------------------------------------

    @invariant()
    def rows_agree_with_the_model(self):
        table = rows()
        assert set(table) == set(self.jobs), "a job appeared or vanished"
        for pk, expected in self.jobs.items():
            row = table[pk]
            seen = {k: row[k] for k in ("state", "lease_token", "attempts", "cancel_requested")}
            wanted = {
                "state": expected.state,
                "lease_token": expected.token,
                "attempts": expected.attempts,
                "cancel_requested": expected.cancel_requested and expected.state not in FINISHED,
            }
            if expected.state in FINISHED:
                seen.pop("cancel_requested")  # a finished job's flag is history
                wanted.pop("cancel_requested")
            assert seen == wanted, f"job {pk}"
            assert row["next_task"] == expected.next_task and row["workspace"] == expected.workspace

    @invariant()
    def claims_match_states(self):
        for row in rows().values():
            claimed = (row["lease_token"] is not None, row["lease_expires_at"] is not None)
            if row["state"] in ACTIVE:
                assert claimed == (True, True), f"{row['state']} job without a claim and lease"
            else:
                # Covers "no job is both unclaimable and unfinished" with the ACTIVE case.
                assert claimed == (False, False), f"{row['state']} job with a claim or lease"

    @invariant()
    def a_key_is_held_exactly_while_its_job_waits_or_runs(self):
        # A job keeps its key on the row for good; it *holds* it (blocks another job with
        # the same name and key: the create and retry rules check that) only while it
        # waits or runs. So: the row has its key, and no two waiting-or-running rows share one.
        table = rows()
        held = set()
        for pk, expected in self.jobs.items():
            assert table[pk]["unique_key"] == expected.key, f"job {pk} lost its key"
            if expected.key is not None and table[pk]["state"] not in FINISHED:
                assert (expected.name, expected.key) not in held, f"{expected.key!r} held twice"
                held.add((expected.name, expected.key))

    @invariant()
    def a_cancelled_job_never_completes(self):
        for expected in self.jobs.values():
            assert not (expected.cancel_accepted and expected.state == "COMPLETE")


EXAMPLES = int(os.environ.get("DBQ_LIFECYCLE_EXAMPLES", "80"))


# A passing run takes well under a minute; shrinking several distinct failures on a real
# database takes minutes, and a timeout would lose the minimal examples.
@pytest.mark.timeout(1200)
def test_job_lifecycle_state_machine():
    run_state_machine_as_test(
        LifecycleMachine,
        settings=settings(
            max_examples=EXAMPLES, stateful_step_count=30, deadline=None, print_blob=True
        ),
    )
