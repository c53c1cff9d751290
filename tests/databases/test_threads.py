"""The threads mode in this process: several jobs at once, connections, shutdown, timeouts."""

from __future__ import annotations

import threading

import pytest
from django.db import connection, connections

from django_dbq.models import Job
from django_dbq.worker.threads import ThreadedWorker
from tests.conftest import wait_for
from tests.helpers import release, row, runs
from tests.models import Execution

pytestmark = [pytest.mark.database, pytest.mark.django_db(transaction=True)]

HOLD = "tests.guarantee_tasks.hold"


def in_flight_at_most() -> int:
    """The most jobs between ``start`` and ``end`` at once, read from the tasks' own records.

    The records' ids follow the order in which the steps wrote them.
    """
    running = most = 0
    for step in Execution.objects.order_by("id").values_list("step", flat=True):
        running += 1 if step == "start" else -1 if step == "end" else 0
        most = max(most, running)
    return most


def in_background(worker: ThreadedWorker) -> threading.Thread:
    """Run ``worker`` in a thread (no signals there; the slots are never the main thread)."""

    def run() -> None:
        try:
            worker.run()
        finally:
            connections.close_all()

    thread = threading.Thread(target=run, daemon=True)
    thread.start()
    return thread


def server_connections() -> int:
    """Connections open to the test database, as the server counts them."""
    with connection.cursor() as cursor:
        if connection.vendor == "postgresql":
            cursor.execute(
                "SELECT count(*) FROM pg_stat_activity WHERE datname = current_database()"
            )
        else:
            cursor.execute(
                "SELECT COUNT(*) FROM information_schema.processlist WHERE db = DATABASE()"
            )
        return cursor.fetchone()[0]


def test_ten_slots_run_fifty_jobs_several_at_once():
    jobs = [Job.objects.create(name="overlapping", workspace={"sleep": 0.2}) for _ in range(50)]
    ThreadedWorker(concurrency=10, drain=True, poll_interval=0.1).run()
    assert set(Job.objects.values_list("state", flat=True)) == {"COMPLETE"}
    assert all(runs(job) == {"start": 1, "end": 1} for job in jobs)
    # Several at once, never more than the slots.
    assert 1 < in_flight_at_most() <= 10


def test_max_jobs_counts_the_jobs_of_the_whole_process():
    for _ in range(12):
        Job.objects.create(name="overlapping", workspace={"sleep": 0.05})
    ThreadedWorker(concurrency=4, max_jobs=5, poll_interval=0.1).run()
    assert Execution.objects.filter(step="start").count() == 5
    assert Job.objects.filter(state="COMPLETE").count() == 5
    # The jobs claimed ahead and not run were handed back.
    assert Job.objects.filter(state="READY").count() + Job.objects.filter(state="NEW").count() == 7


def test_connections_stay_within_concurrency_plus_three(held_jobs):
    if connection.vendor == "sqlite":
        pytest.skip("SQLite has no server to count connections")
    slots = 5
    before = server_connections()
    jobs = [Job.objects.create(name="held") for _ in range(slots)]
    worker = ThreadedWorker(concurrency=slots, lease_seconds=1, poll_interval=0.1)
    thread = in_background(worker)
    try:
        wait_for(lambda: all(runs(job)["held"] for job in jobs), what="every slot to run a job")
        # The heartbeat and maintenance threads tick every quarter lease: they are connected.
        wait_for(lambda: worker.wakeups.up or connection.vendor != "postgresql", what="LISTEN")
        seen = max(server_connections() for _ in range(20)) - before
    finally:
        for job in jobs:
            release(job)
        worker.shutdown()
        thread.join(60)
    assert not thread.is_alive()
    assert slots <= seen <= slots + 3


def test_a_second_request_hands_running_jobs_back_and_fences_the_slots_out(held_jobs):
    jobs = [Job.objects.create(name="held") for _ in range(2)]
    worker = ThreadedWorker(concurrency=2, poll_interval=0.1)
    thread = in_background(worker)
    wait_for(lambda: all(runs(job)["held"] for job in jobs), what="both slots to run a job")
    worker.shutdown()
    worker.shutdown()
    thread.join(60)
    assert not thread.is_alive()  # returned while the steps still run
    for job in jobs:
        values = row(job)
        assert (values["state"], values["next_task"], values["lease_token"]) == (
            "READY",
            HOLD,
            None,
        )
        assert values["attempts"] == 0  # the interrupted attempt is given back
    for job in jobs:
        release(job)  # the steps return now: their checkpoints must change nothing
    for slot in worker.slots:
        slot.thread.join(60)
        assert not slot.thread.is_alive()
    for job in jobs:
        assert (row(job)["state"], row(job)["next_task"]) == ("READY", HOLD)
        assert runs(job) == {"held": 1, "release": 1}


def test_a_step_past_its_timeout_ends_the_job_while_its_thread_is_stuck(settings, held_jobs):
    settings.JOBS = {
        **settings.JOBS,
        "held_timed": {"tasks": [HOLD, "tests.jobs.record_b"], "timeout": 1},
    }
    stuck = Job.objects.create(name="held_timed", priority=1)
    behind = [Job.objects.create(name="chain") for _ in range(4)]
    worker = ThreadedWorker(concurrency=3, lease_seconds=1, poll_interval=0.1)
    worker.pacing.seconds_per_job = 0.001  # the first claim takes them all: some wait behind
    thread = in_background(worker)
    try:
        wait_for(lambda: row(stuck)["state"] == "FAILED", what="the watchdog to end the job")
        values = row(stuck)
        assert values["errors"][-1]["type"] == "StepTimeout"
        assert values["errors"][-1]["message"] == f"{HOLD} ran longer than its timeout of 1 s"
        assert runs(stuck) == {"held": 1}  # the step has not returned: its slot is stuck
        assert worker.watchdog.stuck() == 1
        # The jobs claimed with it are run by the other slots; they go on.
        after = Job.objects.create(name="chain")
        for job in [*behind, after]:
            wait_for(lambda job=job: row(job)["state"] == "COMPLETE", what="the other slots")
        assert worker.watchdog.stuck() == 1
        release(stuck)  # the stuck step returns at last: what it writes changes nothing
        wait_for(lambda: worker.watchdog.stuck() == 0, what="the stuck step to return")
    finally:
        release(stuck)
        worker.shutdown()
        thread.join(60)
    assert not thread.is_alive()
    values = row(stuck)
    assert (values["state"], values["next_task"], len(values["errors"])) == ("FAILED", HOLD, 1)
    assert runs(stuck) == {"held": 1, "release": 2}  # record_b never ran


def test_concurrency_must_be_a_whole_number_of_at_least_one():
    for bad in (0, -1, 1.5, True, "2"):
        with pytest.raises(ValueError, match="concurrency"):
            ThreadedWorker(concurrency=bad)
