"""What an adversarial review broke (issue #9): a task's own save(), NULL-token writes,
failures that could not be stored, defeated timeouts, cancel races, rescued jobs' errors.

Each test failed on the code before its fix.
"""

import datetime
import signal
import threading
import uuid

import pytest
from django.core.exceptions import ImproperlyConfigured
from django.db import connection
from django.utils import timezone

from django_dbq import leases
from django_dbq.engine import Claimer, mark_stopping
from django_dbq.exceptions import JobLost
from django_dbq.models import Job
from django_dbq.worker import Worker
from django_dbq.worker.execution import JobRun
from tests import hardening_tasks
from tests.conftest import wait_for
from tests.helpers import executions, manage, rescue_lapsed_jobs

pytestmark = [pytest.mark.processes, pytest.mark.django_db(transaction=True)]


@pytest.fixture(autouse=True)
def _forget_observations():
    hardening_tasks.OBSERVED.clear()


def drain(*args: str) -> str:
    """Run ``manage.py worker --drain`` to the end; returns its output."""
    result = manage("worker", "--drain", *args)
    assert result.returncode == 0, result.stdout + result.stderr
    return result.stdout + result.stderr


def refreshed(job: Job) -> Job:
    return Job.objects.get(pk=job.pk)


# -- 1. a task's own job.save() ----------------------------------------------------


def test_a_tasks_save_keeps_the_state_the_lease_and_a_cancel_made_during_the_step():
    job = Job.objects.create(name="save_during_step")
    Worker("default")._process_job()
    before, after = hardening_tasks.OBSERVED["before"], hardening_tasks.OBSERVED["after"]
    assert after["workspace"] == {"saved": True}  # what the task may change is saved
    assert after["state"] == "PROCESSING"
    assert after["cancel_requested"] is True
    assert after["lease_expires_at"] >= before["lease_expires_at"]
    job = refreshed(job)
    assert job.state == "CANCELLED"  # the cancel made during the step won
    assert executions(job) == []  # record_b, the next step, never ran


def test_a_tasks_save_after_its_claim_was_lost_raises_and_writes_nothing():
    job = Job.objects.create(name="save_after_losing", workspace={"kept": 1})
    Worker("default")._process_job()
    observed = hardening_tasks.OBSERVED
    assert isinstance(observed["raised"], JobLost)
    assert observed["after"]["lease_token"] == observed["new_token"]
    assert observed["after"]["workspace"] == {"kept": 1}
    assert refreshed(job).lease_token == observed["new_token"]  # the new holder's, untouched


def test_a_step_that_saves_past_its_lease_is_not_rescued_and_runs_once(start_worker):
    job = Job.objects.create(name="keep_saving", workspace={"seconds": 8})
    env = {"DBQ_LEASE_SECONDS": "3"}
    first = start_worker(env=env)
    wait_for(lambda: executions(job) == ["saving"], what="the saving step to start")
    second = start_worker(env=env)  # a second worker that would rescue a lapsed lease
    wait_for(lambda: refreshed(job).state == "COMPLETE", what="the job to complete")
    assert executions(job) == ["saving", "b"], first.log() + second.log()
    assert refreshed(job).errors == []
    assert refreshed(job).workspace["progress"] > 1


def test_a_save_outside_a_claim_still_writes_the_row():
    job = Job.objects.create(name="noop")
    job = refreshed(job)
    job.priority = 7
    job.save()
    assert refreshed(job).priority == 7


# -- 2. no write ever matches a NULL token -------------------------------------------


def test_mark_stopping_never_touches_a_job_released_meanwhile():
    job = Job.objects.create(name="chain")
    (claimed,) = Claimer(Job.objects.using("default"), ["default"], "w", 60).claim(1)
    JobRun(claimed, lambda write: write()).outcome.release()
    assert claimed.lease_token is None
    assert mark_stopping(claimed, "default") == 0
    assert refreshed(job).state == "READY"
    assert Job.objects.delete_old(hours=0) == 0


def test_fenced_update_without_a_token_writes_nothing():
    job = Job.objects.create(name="noop", state="READY")
    assert job.lease_token is None
    assert job.fenced_update(state="STOPPING") is False
    assert refreshed(job).state == "READY"


# -- 3. a failure that could not be written -------------------------------------------


@pytest.mark.parametrize("action", ["raise_surrogate", "raise_nul"])
def test_an_unstorable_error_message_is_stored_cleaned_and_the_step_runs_once(action):
    job = Job.objects.create(name="misbehave", workspace={"do": action})
    drain()
    job = refreshed(job)
    assert job.state == "FAILED"
    assert executions(job) == ["misbehave"]
    [error] = job.errors
    assert error["type"] == "ValueError"
    assert "\\udc80" in error["message"] or "\\x00" in error["message"]
    assert job.error.startswith("ValueError: ")


def test_an_impossible_retry_delay_fails_the_attempt_with_a_clear_error():
    job = Job.objects.create(name="misbehave", workspace={"do": "retry_forever"})
    drain()
    job = refreshed(job)
    assert job.state == "FAILED"
    assert executions(job) == ["misbehave"]
    assert "RetryLater delay must be a number of seconds" in job.errors[-1]["message"]


def test_a_timeout_during_a_query_fails_the_step_once_with_its_real_error():
    if connection.vendor == "sqlite":
        pytest.skip("SQLite has no server-side sleep to interrupt")
    job = Job.objects.create(name="misbehave_timed", workspace={"do": "slow_query"})
    drain()
    job = refreshed(job)
    assert job.state == "FAILED"
    assert executions(job) == ["misbehave"]
    assert [error["type"] for error in job.errors] == ["StepTimeout"]


# -- 4. timeouts that cannot be defeated -----------------------------------------------


@pytest.mark.parametrize("action", ["swallow_timeout", "swallow_everything", "cancel_timer"])
def test_a_step_that_defeats_its_timeout_still_fails_its_attempt(action):
    job = Job.objects.create(name="misbehave_timed", workspace={"do": action})
    output = drain()
    job = refreshed(job)
    assert job.state == "FAILED", output
    assert [error["type"] for error in job.errors] == ["StepTimeout"]
    if action == "swallow_timeout":
        assert executions(job) == ["misbehave"]  # interrupted: the loop never finished
    if action == "cancel_timer":
        assert "cancelled the step timer" in output


def test_a_timeout_outside_the_main_thread_fails_the_step_loudly():
    job = Job.objects.create(name="misbehave_timed", workspace={"do": "sleep", "seconds": 2})
    thread = threading.Thread(target=Worker("default")._process_job)
    thread.start()
    thread.join(60)
    job = refreshed(job)
    assert job.state == "FAILED"
    assert "which only a worker running in the main thread (or the threads mode" in job.error


def test_a_worker_run_outside_the_main_thread_refuses_to_start_when_jobs_have_timeouts():
    raised = []

    def run() -> None:
        try:
            Worker("default", drain=True).run()
        except ImproperlyConfigured as error:
            raised.append(error)

    thread = threading.Thread(target=run)
    thread.start()
    thread.join(60)
    assert raised and "main thread" in str(raised[0])


# -- 10. a cancel wins, whatever the interleaving ---------------------------------------


def test_a_cancel_of_a_claimed_job_that_has_not_started_wins():
    first = Job.objects.create(name="cancel_other", priority=1)
    second = Job.objects.create(name="chain")
    first.workspace = {"other": str(second.pk)}
    Job.objects.filter(pk=first.pk).update(workspace=first.workspace)
    worker = Worker("default", drain=True, batch_size=2)
    worker.pacing.seconds_per_job = 0.001  # claim both at once: the second waits, prefetched
    worker.run()
    assert hardening_tasks.OBSERVED["cancelled"] is True
    second = refreshed(second)
    assert second.state == "CANCELLED"
    assert second.workspace == {}  # step_one never ran
    assert refreshed(first).state == "COMPLETE"


def test_a_cancel_requested_during_the_last_step_ends_the_job_cancelled():
    job = Job.objects.create(name="misbehave", workspace={"do": "sleep", "seconds": 0})
    (claimed,) = Claimer(Job.objects.using("default"), ["default"], "w", 60).claim(1)
    assert Job.objects.get(pk=job.pk).cancel() is True
    JobRun(claimed, lambda write: write()).run()
    assert refreshed(job).state == "CANCELLED"


def test_cancel_against_a_job_handed_back_and_claimed_again_and_again():
    """Cancel while another connection claims and releases the job in a tight loop."""
    stop = threading.Event()

    def churn() -> None:
        claimer = Claimer(Job.objects.using("default"), ["default"], "churn", 60)
        try:
            while not stop.is_set():
                for claimed in claimer.claim(1):
                    JobRun(claimed, lambda write: write()).outcome.release()
        finally:
            connection.close()

    outcomes = []
    for _ in range(30):
        job = Job.objects.create(name="chain")
        stop.clear()
        thread = threading.Thread(target=churn)
        thread.start()
        try:
            wait_for(lambda job=job: refreshed(job).attempts > 0, what="the churn to start")
            outcomes.append(Job.objects.get(pk=job.pk).cancel())
        finally:
            stop.set()
            thread.join(60)
        Worker("default", drain=True).run()
        assert refreshed(job).state == "CANCELLED"
    assert outcomes == [True] * 30


# -- 13. a rescued job that completes --------------------------------------------------


def test_a_rescued_job_that_completes_has_no_current_error_but_keeps_its_history():
    job = Job.objects.create(name="noop")
    Job.objects.filter(pk=job.pk).update(
        state="PROCESSING",
        attempts=1,
        lease_token=uuid.uuid4(),
        lease_expires_at=leases.now() - datetime.timedelta(minutes=1),
    )
    assert rescue_lapsed_jobs() == 1
    Worker("default", drain=True).run()
    job = refreshed(job)
    assert job.state == "COMPLETE"
    assert job.error == ""
    assert [error["type"] for error in job.errors] == ["WorkerLost"]
    assert job.finished_at <= timezone.now()


def test_signal_handlers_are_left_as_they_were():
    handler = signal.getsignal(signal.SIGALRM)
    Job.objects.create(name="misbehave_timed", workspace={"do": "sleep", "seconds": 0})
    Worker("default")._process_job()
    assert signal.getsignal(signal.SIGALRM) is handler
    assert signal.getitimer(signal.ITIMER_REAL) == (0.0, 0.0)
