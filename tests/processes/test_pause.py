"""Pausing queues with real ``manage.py worker`` processes."""

import signal
import time

import pytest
from django.db import connection
from django.utils import timezone

from django_dbq import queues
from django_dbq.models import Job
from tests.conftest import wait_for
from tests.helpers import manage, release, row, runs, state_is

pytestmark = [pytest.mark.processes, pytest.mark.django_db(transaction=True)]

HELD = {"DJANGO_SETTINGS_MODULE": "tests.settings_guarantees"}
PAUSED_LINE = "paused: their jobs wait"


def long_poll() -> str:
    # On PostgreSQL a 30 s poll means only a notification can wake the worker in time.
    return "30" if connection.vendor == "postgresql" else "0.2"


def test_a_paused_queue_waits_while_others_run_and_runs_once_resumed(start_worker):
    worker = start_worker("a", "b", env={"DBQ_POLL_INTERVAL": long_poll()})
    wait_for(lambda: "Starting job worker" in worker.log(), what="the start line")
    paused = manage("pause_queue", "a")
    assert paused.returncode == 0 and paused.stdout == "a paused\n", paused.stderr
    waiting = Job.objects.create(name="noop", queue_name="a")
    other = Job.objects.create(name="noop", queue_name="b")  # created after: claimed after
    wait_for(state_is(other, "COMPLETE"), timeout=20, what="the job of the queue not paused")
    assert (row(waiting)["state"], row(waiting)["attempts"]) == ("NEW", 0)

    resumed = manage("resume_queue", "a")
    assert resumed.returncode == 0 and resumed.stdout == "a resumed\n", resumed.stderr
    wait_for(state_is(waiting, "COMPLETE"), timeout=20, what="the job of the resumed queue")
    worker.signal(signal.SIGTERM)
    assert worker.wait() == 0


def test_a_worker_whose_queues_are_all_paused_idles_and_stops_cleanly(start_worker):
    queues.pause(["a", "b"])
    jobs = [Job.objects.create(name="noop", queue_name=name) for name in ("a", "b")]
    worker = start_worker("a", "b", env={"DBQ_POLL_INTERVAL": "0.2"})
    # It read the pause state before its first claim: the jobs existed then.
    wait_for(lambda: PAUSED_LINE in worker.log(), what="the worker to see the pause")
    worker.signal(signal.SIGTERM)
    assert worker.wait() == 0, worker.log()[-3000:]
    for job in jobs:
        assert (row(job)["state"], row(job)["attempts"]) == ("NEW", 0)


def test_a_pause_lets_the_running_step_finish_and_the_next_job_waits(start_worker, held_jobs):
    poll = 0.5
    worker = start_worker("a", "b", env={**HELD, "DBQ_POLL_INTERVAL": str(poll)})
    running = Job.objects.create(name="held", queue_name="a")
    wait_for(lambda: runs(running)["held"] == 1, what="the long step to start")
    queues.pause("a")
    waiting = Job.objects.create(name="noop", queue_name="a")
    other = Job.objects.create(name="noop", queue_name="b")
    # Workers see a pause within one poll interval of it; the last look at the pause
    # state here came before the claim of the running job.
    time.sleep(poll)
    release(running)
    wait_for(state_is(running, "COMPLETE"), what="the running job to finish")
    assert runs(running) == {"held": 1, "b": 1, "release": 1}  # each step once: checkpointed
    wait_for(state_is(other, "COMPLETE"), what="the job of the queue not paused")
    assert (row(waiting)["state"], row(waiting)["attempts"]) == ("NEW", 0)

    queues.resume("a")
    wait_for(state_is(waiting, "COMPLETE"), what="the waiting job once resumed")
    worker.signal(signal.SIGTERM)
    assert worker.wait() == 0


def test_drain_ends_when_only_jobs_of_paused_queues_are_left(start_worker):
    queues.pause("a")
    waiting = Job.objects.create(name="noop", queue_name="a")
    other = Job.objects.create(name="noop", queue_name="b")
    worker = start_worker("a", "b", "--drain", env={"DBQ_POLL_INTERVAL": "0.2"})
    assert worker.wait() == 0, worker.log()[-3000:]
    assert row(other)["state"] == "COMPLETE"
    assert (row(waiting)["state"], row(waiting)["attempts"]) == ("NEW", 0)


def test_drain_waiting_for_retries_ends_when_the_only_retry_is_in_a_paused_queue(start_worker):
    """A retry due in a paused queue waits for a resume, not for this drain."""
    queues.pause("a")
    due = Job.objects.create(name="noop", queue_name="a")
    Job.objects.filter(pk=due.pk).update(state="READY", run_after=timezone.now())
    other = Job.objects.create(name="noop", queue_name="b")
    worker = start_worker("a", "b", "--drain", "--wait-retries", env={"DBQ_POLL_INTERVAL": "0.2"})
    assert worker.wait() == 0, worker.log()[-3000:]
    assert row(other)["state"] == "COMPLETE"
    assert row(due)["state"] == "READY"
