"""Every monitoring signal is sent, with the documented arguments."""

import datetime

import pytest
from django.test import override_settings
from django.utils import timezone

from django_dbq import signals
from django_dbq.models import Job
from tests.helpers import rescue_lapsed_jobs, run_steps

pytestmark = [pytest.mark.database, pytest.mark.django_db]

ALL = [
    "job_created",
    "job_started",
    "step_finished",
    "job_completed",
    "job_failed",
    "job_retried",
    "job_rescued",
    "job_cancelled",
]


@pytest.fixture
def sent():
    """A list of (signal name, job id, other arguments) for every signal sent during the test."""
    events = []
    receivers = {}
    for name in ALL:

        def receiver(sender, signal, job, _name=name, **kwargs):
            assert sender is Job
            assert isinstance(job, Job)
            events.append((_name, job.pk, kwargs))

        receivers[name] = receiver
        getattr(signals, name).connect(receiver, sender=Job)
    yield events
    for name, receiver in receivers.items():
        getattr(signals, name).disconnect(receiver, sender=Job)


def names(events, pk=None):
    return [name for name, job_pk, _ in events if pk is None or job_pk == pk]


def test_job_created_for_create_and_bulk_create(sent):
    job = Job.objects.create(name="noop")
    bulk = Job.objects.bulk_create([Job(name="noop"), Job(name="chain")])
    assert sent == [("job_created", job.pk, {})] + [("job_created", j.pk, {}) for j in bulk]


def test_started_step_finished_and_completed(sent):
    job = Job.objects.create(name="chain")
    sent.clear()
    run_steps()
    # run_steps runs one step per claim, so each claim starts the job again.
    assert names(sent) == ["job_started", "step_finished"] * 3 + ["job_completed"]
    assert [kw["task"] for name, _, kw in sent if name == "step_finished"] == [
        "tests.jobs.step_one",
        "tests.jobs.step_two",
        "tests.jobs.step_three",
    ]
    assert {pk for _, pk, _ in sent} == {job.pk}


def test_job_failed_carries_the_exception(sent):
    job = Job.objects.create(name="failing")
    run_steps()
    [(name, pk, kwargs)] = [event for event in sent if event[0] == "job_failed"]
    assert pk == job.pk
    assert isinstance(kwargs["exception"], ValueError)
    assert "job_completed" not in names(sent)


def test_job_retried_automatically_and_by_hand(sent):
    job = Job.objects.create(name="retrying", workspace={"succeed_on": 2})
    run_steps()
    [automatic] = [kwargs for name, _, kwargs in sent if name == "job_retried"]
    assert automatic == {"delay": 0, "manual": False}
    Job.objects.filter(pk=job.pk).update(state="FAILED")
    sent.clear()
    job.retry()
    assert sent == [("job_retried", job.pk, {"delay": 0.0, "manual": True})]


def test_job_rescued_and_then_failed_when_lost_too_often(sent):
    lapsed = timezone.now() - datetime.timedelta(minutes=1)
    again = Job.objects.create(name="noop")
    lost = Job.objects.create(name="noop")
    Job.objects.filter(pk=again.pk).update(state="PROCESSING", attempts=1, lease_expires_at=lapsed)
    Job.objects.filter(pk=lost.pk).update(state="PROCESSING", attempts=99, lease_expires_at=lapsed)
    sent.clear()
    assert rescue_lapsed_jobs() == 2
    assert names(sent, again.pk) == ["job_rescued"]
    assert names(sent, lost.pk) == ["job_rescued", "job_failed"]
    assert [kw for name, pk, kw in sent if name == "job_failed"] == [{"exception": None}]


@override_settings(
    JOBS={
        "self_cancel": ["tests.jobs.cancel_myself", "tests.jobs.noop"],
        "noop": ["tests.jobs.noop"],
    }
)
def test_job_cancelled_for_a_waiting_and_for_a_running_job(sent):
    waiting = Job.objects.create(name="noop")
    running = Job.objects.create(name="self_cancel")
    sent.clear()
    waiting.cancel()
    assert sent == [("job_cancelled", waiting.pk, {})]
    run_steps()
    assert names(sent, running.pk) == ["job_started", "job_cancelled"]
    assert Job.objects.get(pk=running.pk).state == "CANCELLED"


def test_every_documented_signal_exists():
    for name in ALL:
        assert name in signals.__doc__
