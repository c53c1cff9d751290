"""Job.objects.bulk_create: runnable jobs in a few statements (COPY on PostgreSQL)."""

import pytest
from django.db import connection, transaction

from django_dbq.exceptions import DuplicateJob
from django_dbq.models import Job

pytestmark = [pytest.mark.database, pytest.mark.django_db(transaction=True)]


def test_bulk_create_of_a_duplicate_unique_key_inserts_nothing():
    existing = Job.objects.create(name="noop", unique_key="only-one")
    with transaction.atomic():
        with pytest.raises(DuplicateJob) as raised:
            Job.objects.bulk_create(
                [Job(name="noop", unique_key="fresh"), Job(name="noop", unique_key="only-one")]
            )
        assert raised.value.existing_job == existing
        # The savepoint kept the surrounding transaction usable.
        assert Job.objects.count() == 1
    assert list(Job.objects.values_list("unique_key", flat=True)) == ["only-one"]


def test_bulk_create_of_one_unique_key_twice_inserts_nothing():
    with pytest.raises(DuplicateJob, match="in one bulk_create"):
        Job.objects.bulk_create(
            [Job(name="noop"), Job(name="noop", unique_key="k"), Job(name="noop", unique_key="k")]
        )
    assert not Job.objects.exists()
    # The same key under two job names is no duplicate.
    Job.objects.bulk_create([Job(name="noop", unique_key="k"), Job(name="chain", unique_key="k")])
    assert Job.objects.count() == 2


def test_bulk_create_of_an_unknown_job_name_inserts_nothing():
    from django_dbq.exceptions import UnknownJob

    with pytest.raises(UnknownJob):
        Job.objects.bulk_create([Job(name="noop"), Job(name="no-such-job")])
    assert not Job.objects.exists()


@pytest.mark.parametrize("batch_size", [0, -1, 2.5, True, "10"])
def test_bulk_create_rejects_a_bad_batch_size_and_runs_no_hook(batch_size):
    job = Job(name="hooked")
    with pytest.raises(ValueError, match="batch_size"):
        Job.objects.bulk_create([job], batch_size=batch_size)
    assert "created_by_hook" not in job.workspace
    assert not Job.objects.exists()


def test_bulk_create_in_small_batches_and_without_an_id():
    jobs = [Job(name="noop") for _ in range(7)] + [Job(id=None, name="noop")]
    Job.objects.bulk_create(jobs, batch_size=3)
    assert jobs[-1].pk is not None
    assert set(Job.objects.values_list("pk", flat=True)) == {job.pk for job in jobs}


def test_bulk_create_with_ignore_conflicts_leaves_duplicates_to_the_database():
    if not connection.features.supports_ignore_conflicts:
        pytest.skip("the database cannot ignore conflicts")
    existing = Job.objects.create(name="noop", unique_key="k")
    Job.objects.bulk_create(
        [Job(name="noop", unique_key="k"), Job(name="noop", unique_key="fresh")],
        ignore_conflicts=True,
    )
    assert sorted(Job.objects.values_list("unique_key", flat=True)) == ["fresh", "k"]
    assert Job.objects.get(unique_key="k") == existing
