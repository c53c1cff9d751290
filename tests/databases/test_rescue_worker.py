"""``engine.rescue_worker``: a dead worker's jobs back at once, fenced on its id and its claim."""

import contextlib

import pytest

from django_dbq import engine, signals
from django_dbq.models import Job
from tests.helpers import claimer, row

pytestmark = [pytest.mark.database, pytest.mark.django_db(transaction=True)]


def rescue(worker_id: str) -> int:
    return engine.rescue_worker(Job.objects.using("default"), worker_id)


@contextlib.contextmanager
def on_rescue(receiver):
    """``receiver(job)`` called for each ``job_rescued`` while the block runs."""

    def receive(sender, job, **kwargs):
        receiver(job)

    signals.job_rescued.connect(receive, sender=Job)
    try:
        yield
    finally:
        signals.job_rescued.disconnect(receive, sender=Job)


def test_a_dead_workers_jobs_come_back_at_once_whatever_their_leases_say():
    running = Job.objects.create(name="chain", workspace={"kept": 1})
    prefetched = Job.objects.create(name="noop")
    others = Job.objects.create(name="noop")
    claimer(worker_id="dead", lease=300).claim(2)
    claimer(worker_id="alive", lease=300).claim(1)
    Job.objects.filter(pk=running.pk).update(next_task="tests.jobs.step_two", state="STOPPING")
    rescued = []
    with on_rescue(lambda job: rescued.append(job.pk)):
        assert rescue("dead") == 2
    assert sorted(rescued, key=str) == sorted([running.pk, prefetched.pk], key=str)
    values = row(running)
    assert (values["state"], values["next_task"], values["workspace"]) == (
        "READY",
        "tests.jobs.step_two",
        {"kept": 1},
    )
    assert (values["lease_token"], values["worker_id"]) == (None, "")
    # The record a lapsed-lease rescue writes: the worker is named, the attempt counted.
    assert [error["type"] for error in values["errors"]] == ["WorkerLost"]
    assert "worker dead was lost" in values["errors"][0]["message"]
    assert values["attempts"] == 1
    assert row(prefetched)["state"] == "READY"
    assert row(others)["state"] == "PROCESSING"  # another worker's claim is not touched
    assert rescue("dead") == 0


def test_a_job_lost_too_often_fails_as_a_lapsed_rescue_would(settings):
    settings.DBQ_RESCUE_MAX_ATTEMPTS = 1
    job = Job.objects.create(name="failing")
    claimer(worker_id="dead", lease=300).claim(1)
    assert rescue("dead") == 1
    values = row(job)
    assert values["state"] == "FAILED"
    assert "was lost" in values["error"]
    assert values["workspace"] == {"failure_hook": "None"}  # the failure hook ran


def test_a_job_claimed_again_by_another_worker_is_never_touched():
    job = Job.objects.create(name="noop")
    claimer(worker_id="dead", lease=300).claim(1)
    # Meanwhile its lease was taken back and another worker claimed it.
    Job.objects.filter(pk=job.pk).update(state="READY", lease_token=None, worker_id="")
    (again,) = claimer(worker_id="alive", lease=300).claim(1)
    assert rescue("dead") == 0
    values = row(job)
    assert (values["state"], values["lease_token"], values["worker_id"]) == (
        "PROCESSING",
        again.claim_token,
        "alive",
    )
    assert values["errors"] == []


def test_a_claim_made_between_the_read_and_the_write_is_fenced_out():
    """The update is fenced on the token seen: a fresh claim under the same id is someone else's."""
    first = Job.objects.create(name="noop")
    second = Job.objects.create(name="noop")
    claimer(worker_id="dead", lease=300).claim(2)
    fresh = []

    def claim_the_other(job):
        if fresh:
            return
        other = second if job.pk == first.pk else first
        Job.objects.filter(pk=other.pk).update(state="READY", lease_token=None, priority=9)
        # A reused worker id (a restarted container with the same host name and pid).
        fresh.extend(claimer(worker_id="dead", lease=300).claim(1))

    with on_rescue(claim_the_other):
        assert rescue("dead") == 1
    (claimed,) = fresh
    assert row(claimed)["priority"] == 9  # the other job, not the one just rescued
    values = row(claimed)
    assert (values["state"], values["lease_token"]) == ("PROCESSING", claimed.claim_token)
    assert values["errors"] == []


def test_an_empty_worker_id_is_refused():
    """Released rows name no worker: an empty id must never select them."""
    with pytest.raises(ValueError, match="worker's id"):
        rescue("")
