"""Job progress (django_dbq.progress): fenced, rate-limited writes from the task holding the job."""

import math
import uuid

import pytest
from django.urls import reverse

from django_dbq.exceptions import JobLost
from django_dbq.models import Job
from django_dbq.worker.execution import JobRun
from tests.helpers import claimer, executions, run_steps

pytestmark = [pytest.mark.database, pytest.mark.django_db(transaction=True)]


def stored(job: Job):
    return Job.objects.filter(pk=job.pk).values_list("progress", flat=True).get()


def held(name: str = "chain") -> Job:
    Job.objects.create(name=name)
    (job,) = claimer().claim(1)
    return job


def test_the_first_report_is_written_the_next_ones_wait_for_the_checkpoint(settings):
    settings.DBQ_PROGRESS_INTERVAL = 3600
    job = held()
    job.set_progress(1, 10, message="first")
    assert stored(job) == {"done": 1, "total": 10, "message": "first"}
    job.set_progress(5, 10)
    assert job.progress == {"done": 5, "total": 10, "message": ""}
    assert stored(job)["done"] == 1  # kept in memory: a tight loop writes once an interval
    following = job.definition.next_task_after(job.next_task)
    JobRun(job, lambda write: write(), lease_seconds=60).outcome.checkpoint(following)
    assert stored(job) == {"done": 5, "total": 10, "message": ""}


def test_with_no_interval_every_report_is_written(settings):
    settings.DBQ_PROGRESS_INTERVAL = 0
    job = held()
    for done in (1, 2, 3):
        job.set_progress(done)
        assert stored(job) == {"done": done, "total": None, "message": ""}


@pytest.mark.parametrize(
    "report, error",
    [
        ((-1, 10), ValueError),
        ((11, 10), ValueError),
        ((math.nan, 10), ValueError),
        ((1, math.inf), ValueError),
        (("3", 10), TypeError),
        ((True, 10), TypeError),
        ((1, 10, 5), TypeError),
    ],
    ids=["negative", "over-total", "nan", "infinite-total", "text", "bool", "message-not-str"],
)
def test_a_bad_report_is_refused_and_changes_nothing(report, error):
    job = held()
    job.set_progress(2, 10)
    with pytest.raises(error):
        job.set_progress(*report)
    assert job.progress == {"done": 2, "total": 10, "message": ""}
    assert stored(job) == {"done": 2, "total": 10, "message": ""}


def test_a_long_message_is_cut_to_fit(settings):
    settings.DBQ_PROGRESS_INTERVAL = 0
    job = held()
    job.set_progress(1, 2, message="x" * 1000)
    assert len(stored(job)["message"]) == 200


def test_only_the_task_holding_the_job_reports():
    job = Job.objects.create(name="chain")
    with pytest.raises(RuntimeError, match="holds no claim"):
        Job.objects.get(pk=job.pk).set_progress(1, 2)
    assert stored(job) is None


def test_a_report_after_the_claim_was_lost_raises_and_writes_nothing():
    job = held()
    Job.objects.filter(pk=job.pk).update(lease_token=uuid.uuid4())  # rescued elsewhere
    with pytest.raises(JobLost):
        job.set_progress(1, 2)
    assert stored(job) is None


def test_a_worker_writes_the_last_report_of_a_tight_loop(settings):
    settings.DBQ_PROGRESS_INTERVAL = 3600
    job = Job.objects.create(name="counts_up", workspace={"total": 5000})
    run_steps()
    assert executions(job) == ["counted", "b"]
    finished = Job.objects.get(pk=job.pk)
    assert finished.state == "COMPLETE"
    assert finished.progress == {"done": 5000, "total": 5000, "message": "item 5000"}


def test_an_async_task_reports_with_aset_progress(settings):
    settings.DBQ_PROGRESS_INTERVAL = 0
    job = Job.objects.create(name="counts_up_async")
    run_steps()
    assert Job.objects.get(pk=job.pk).progress == {"done": 3, "total": 3, "message": ""}


def test_the_admin_shows_progress_in_the_list_and_on_the_page(admin_client):
    job = Job.objects.create(name="noop")
    Job.objects.filter(pk=job.pk).update(
        progress={"done": 3, "total": 12, "message": "<b>rows</b>"}
    )
    listing = admin_client.get(reverse("admin:django_dbq_job_changelist")).content.decode()
    assert '<progress class="dbq-progress" max="100" value="25"' in listing
    assert "3 / 12 &lt;b&gt;rows&lt;/b&gt;" in listing  # the message is escaped
    page = admin_client.get(reverse("admin:django_dbq_job_change", args=[job.pk])).content.decode()
    assert "3 / 12" in page
