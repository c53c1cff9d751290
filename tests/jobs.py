"""Task functions used by the test suite's JOBS setting."""

import datetime
import os
import time

from django.db import connection

from django_dbq.exceptions import FailPermanently, RetryLater


def noop(job):
    pass


def step_one(job):
    job.workspace["one"] = job.workspace.get("input", 0) + 1


def step_two(job):
    job.workspace["two"] = job.workspace["one"] * 2


def step_three(job):
    job.workspace["three"] = job.workspace["two"] + 3


def raise_error(job):
    raise ValueError("task went wrong")


def record_failure(job, exception):
    from django_dbq.models import Job

    Job.objects.filter(pk=job.pk).update(workspace={"failure_hook": repr(exception)})


def creation_hook(job):
    job.workspace["created_by_hook"] = True


def pre_task_hook(job):
    job.workspace.setdefault("pre", []).append(job.next_task)


def post_task_hook(job):
    job.workspace.setdefault("post", []).append(job.next_task)


def _record(job, step):
    """Append one execution of ``step`` to the tests' execution log table."""
    with connection.cursor() as cursor:
        cursor.execute(
            "INSERT INTO tests_execution (job_id, step, pid) VALUES (%s, %s, %s)",
            [str(job.pk), step, os.getpid()],
        )


def record_a(job):
    _record(job, "a")


def record_b(job):
    _record(job, "b")


def record_c(job):
    _record(job, "c")


def sleep_step(job):
    time.sleep(float(job.workspace.get("sleep", 0.1)))
    _record(job, "sleep")


def overlap_step(job):
    """Records ``start``, sleeps, records ``end``: the records show how many ran at once."""
    _record(job, "start")
    time.sleep(float(job.workspace.get("sleep", 0.1)))
    _record(job, "end")


def sleep_first_attempt(job):
    """Sleeps ``sleep`` seconds on the job's first attempt only, then records ``sleep``."""
    if job.attempts == 1:
        time.sleep(float(job.workspace.get("sleep", 0.1)))
    _record(job, "sleep")


def fail_until(job):
    """Fails until the job has been attempted ``succeed_on`` times.

    With ``permanent`` it raises FailPermanently; with ``snooze`` its first run asks
    to be retried later (RetryLater), which gives the attempt back.
    """
    if job.workspace.get("permanent"):
        raise FailPermanently("no point retrying")
    if job.workspace.get("snooze") and not job.snoozes:
        raise RetryLater(delay=0, reason="not yet")
    if job.attempts < job.workspace.get("succeed_on", 99):
        raise RuntimeError(f"attempt {job.attempts} fails")
    job.workspace["succeeded_on"] = job.attempts


def count_failure(job, exception):
    """A failure hook that logs each call in the execution table."""
    _record(job, f"failure_hook:{type(exception).__name__}")


def raising_hook(job, *args):
    raise RuntimeError("the hook broke")


def dirty_then_fail(job):
    """Writes to the workspace, then fails on the first attempt."""
    job.workspace["dirty"] = job.attempts
    _record(job, "dirty")
    if job.attempts < 2:
        raise RuntimeError("first attempt fails after writing")


def wait_for_cancel(job):
    """Waits (at most a minute) until someone asks to cancel the job, then returns."""
    _record(job, "waiting")
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        if job.is_cancel_requested():
            job.workspace["saw_cancel"] = True
            return
        time.sleep(0.05)
    raise RuntimeError("nobody cancelled the job")


def fail_then_cancelled(job):
    """Fails after someone asked to cancel the job (the job must not be retried)."""
    _record(job, "fail_then_cancelled")
    from django_dbq.models import Job

    Job.objects.filter(pk=job.pk).update(cancel_requested=True)
    raise RuntimeError("failed while a cancel was pending")


not_callable = 42


def snooze_forever(job):
    """Asks to run again, every time: a snooze loop that must end."""
    job.workspace["dirty"] = True  # dropped: a snooze returns to the last checkpoint
    raise RetryLater(delay=0, reason="still not ready")


def snooze_five_minutes(job):
    """Asks to run again in five minutes."""
    raise RetryLater(delay=datetime.timedelta(minutes=5), reason="come back later")


def cancel_myself(job):
    """Asks for its own job to be cancelled, then returns normally."""
    assert job.cancel() is True


def post_hook_fails_on_step_two(job):
    if job.next_task == "tests.jobs.step_two":
        raise RuntimeError("post hook broke on step two")


def _tally(job, step):
    """Note in the workspace that ``step`` ran (works on any workspace, checkpointed or not)."""
    job.workspace.setdefault("ran", []).append(step)


def tally_a(job):
    _tally(job, "a")


def tally_b(job):
    _tally(job, "b")


def tally_c(job):
    _tally(job, "c")


def _soak_step(job, step):
    """A soak step: record the run (job, step, pid), then work for ``work`` seconds.

    Recording first means a run cut short mid-step still counts as a run, so the soak
    tool sees every extra run an interruption caused.
    """
    _record(job, step)
    time.sleep(float(job.workspace.get("work", 0.05)))


def soak_one(job):
    _soak_step(job, "one")


def soak_two(job):
    _soak_step(job, "two")


def soak_three(job):
    _soak_step(job, "three")
