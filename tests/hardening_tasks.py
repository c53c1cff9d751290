"""Tasks that misbehave the ways an adversarial review found (tests/processes/test_hardening.py).

What each one does is chosen by the job's workspace, so one JOBS entry serves many tests.
"""

import signal
import time
import uuid

from django.db import connection

from django_dbq.exceptions import JobLost, RetryLater
from tests.jobs import _record

# What a task saw from inside its step, for in-process tests to assert on.
OBSERVED: dict = {}


def _row(job) -> dict:
    from django_dbq.models import Job

    return Job.objects.filter(pk=job.pk).values().get()


def misbehave(job):
    """Record the run, then do what ``workspace["do"]`` says."""
    _record(job, "misbehave")
    action = job.workspace.get("do")
    if action == "raise_surrogate":
        raise ValueError("cannot encode \udc80 this")
    if action == "raise_nul":
        raise ValueError("a NUL \x00 in the message")
    if action == "retry_forever":
        raise RetryLater(delay=float("inf"))
    if action == "slow_query":
        with connection.cursor() as cursor:
            if connection.vendor == "postgresql":
                cursor.execute("SELECT pg_sleep(3)")
            else:
                cursor.execute("SELECT SLEEP(3)")
    if action == "swallow_timeout":
        # An ordinary retry loop: catches Exception around each try.
        deadline = time.monotonic() + 4
        while time.monotonic() < deadline:
            try:
                time.sleep(0.05)
            except Exception:
                pass
        _record(job, "loop_finished")
    if action == "swallow_everything":
        try:
            time.sleep(4)
        except BaseException:
            pass
        _record(job, "returned")
    if action == "cancel_timer":
        signal.setitimer(signal.ITIMER_REAL, 0)
        time.sleep(2)
        _record(job, "returned")
    if action == "sleep":
        time.sleep(job.workspace.get("seconds", 1))


def save_during_step(job):
    """A 3.x-style task that saves its job mid-step, with stale in-memory values."""
    from django_dbq.models import Job

    before = _row(job)
    # Someone cancels the job while this step runs.
    Job.objects.filter(pk=job.pk).update(cancel_requested=True)
    job.state = "COMPLETE"
    job.lease_expires_at = before["lease_expires_at"].replace(year=2000)
    job.workspace["saved"] = True
    job.save()
    OBSERVED["before"], OBSERVED["after"] = before, _row(job)


def save_after_losing_the_claim(job):
    """Saves after the job was rescued and claimed again elsewhere (a new token)."""
    from django_dbq.models import Job

    new_token = uuid.uuid4()
    Job.objects.filter(pk=job.pk).update(lease_token=new_token)
    job.workspace["late"] = True
    try:
        job.save()
    except JobLost as error:
        OBSERVED["raised"] = error
    OBSERVED["new_token"], OBSERVED["after"] = new_token, _row(job)


def keep_saving(job):
    """Runs past several leases, saving progress as it goes (as 3.x tasks do)."""
    _record(job, "saving")
    deadline = time.monotonic() + job.workspace.get("seconds", 8)
    while time.monotonic() < deadline:
        job.workspace["progress"] = job.workspace.get("progress", 0) + 1
        job.save()
        time.sleep(0.2)


def cancel_the_other_job(job):
    """Cancels the job named in the workspace, then keeps working a little."""
    from django_dbq.models import Job

    _record(job, "canceller")
    OBSERVED["cancelled"] = Job.objects.get(pk=job.workspace["other"]).cancel()
    time.sleep(0.2)
