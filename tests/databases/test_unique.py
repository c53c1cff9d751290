"""Unique jobs: one waiting or running job per (name, unique_key), enforced by the database."""

import threading

import pytest
from django.db import IntegrityError, connection, transaction

from django_dbq.exceptions import DuplicateJob
from django_dbq.models import Job
from tests.helpers import run_steps

pytestmark = [pytest.mark.database, pytest.mark.django_db]


def test_a_second_job_with_the_same_key_raises_duplicate_job_with_the_existing_one():
    first = Job.objects.create(name="noop", unique_key="report-42")
    with pytest.raises(DuplicateJob, match="already waiting or running") as caught:
        Job.objects.create(name="noop", unique_key="report-42", workspace={"x": 1})
    assert caught.value.existing_job == first
    assert isinstance(caught.value, ValueError)
    assert list(Job.objects.all()) == [first]


def test_the_callers_transaction_stays_usable_after_a_duplicate():
    with transaction.atomic():
        Job.objects.create(name="noop", unique_key="k")
        with pytest.raises(DuplicateJob):
            Job.objects.create(name="noop", unique_key="k")
        Job.objects.create(name="noop", unique_key="other")
    assert Job.objects.count() == 2


def test_the_key_is_per_job_name_and_jobs_without_a_key_are_never_duplicates():
    Job.objects.create(name="noop", unique_key="k")
    Job.objects.create(name="chain", unique_key="k")
    Job.objects.create(name="noop")
    Job.objects.create(name="noop")
    assert Job.objects.count() == 4


def test_a_running_job_still_holds_its_key():
    job = Job.objects.create(name="noop", unique_key="k")
    Job.objects.filter(pk=job.pk).update(state="PROCESSING")
    with pytest.raises(DuplicateJob) as caught:
        Job.objects.create(name="noop", unique_key="k")
    assert caught.value.existing_job.pk == job.pk


@pytest.mark.parametrize("name, outcome", [("noop", "COMPLETE"), ("failing", "FAILED")])
def test_the_key_is_released_when_the_job_finishes(name, outcome):
    job = Job.objects.create(name=name, unique_key="k")
    run_steps()
    job.refresh_from_db()
    # The finished job keeps its key on the row but no longer holds it.
    assert job.state == outcome and job.unique_key == "k"
    again = Job.objects.create(name=name, unique_key="k")
    assert again.unique_key == "k"


def test_the_key_is_released_when_the_job_is_cancelled():
    Job.objects.create(name="noop", unique_key="k").cancel()
    Job.objects.create(name="noop", unique_key="k")
    assert sorted(Job.objects.filter(unique_key="k").values_list("state", flat=True)) == [
        "CANCELLED",
        "NEW",
    ]


def test_the_database_itself_refuses_two_rows_with_the_same_name_and_key():
    one, two = Job.objects.create(name="noop"), Job.objects.create(name="noop")
    Job.objects.filter(pk=one.pk).update(unique_key="k")
    with pytest.raises(IntegrityError), transaction.atomic():
        Job.objects.filter(pk=two.pk).update(unique_key="k")
    assert Job.objects.filter(unique_key="k").count() == 1


@pytest.mark.django_db(transaction=True)
def test_concurrent_creations_with_one_key_insert_exactly_one_job():
    threads, results = 6, []
    barrier = threading.Barrier(threads)

    def create():
        try:
            barrier.wait()
            try:
                job = Job.objects.create(name="noop", unique_key="race")
                results.append(("created", job.pk))
            except DuplicateJob as error:
                results.append(("duplicate", error.existing_job and error.existing_job.pk))
        finally:
            connection.close()

    workers = [threading.Thread(target=create) for _ in range(threads)]
    for worker in workers:
        worker.start()
    for worker in workers:
        worker.join()
    created = [pk for kind, pk in results if kind == "created"]
    assert len(results) == threads and len(created) == 1
    assert Job.objects.filter(unique_key="race").count() == 1
    assert {pk for kind, pk in results if kind == "duplicate"} <= {created[0], None}
