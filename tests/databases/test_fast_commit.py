"""DBQ_FAST_COMMIT: on PostgreSQL the worker's bookkeeping skips the WAL flush wait."""

import pytest
from django.db import connection
from django.test import override_settings
from django.test.utils import CaptureQueriesContext

from django_dbq.engine import Claimer
from django_dbq.models import Job

pytestmark = [pytest.mark.database, pytest.mark.django_db(transaction=True)]


def claim_one() -> Job:
    Job.objects.create(name="noop")
    return Claimer(Job.objects.using("default"), ["default"], "fast-commit-test", 60).claim(1)[0]


@pytest.mark.parametrize("fast", [True, False])
def test_fenced_writes_land_and_stay_fenced_with_or_without_fast_commit(fast):
    with override_settings(DBQ_FAST_COMMIT=fast):
        job = claim_one()
        with CaptureQueriesContext(connection) as queries:
            assert job.fenced_update(workspace={"step": 1}, next_task="tests.jobs.noop")
        fast_path = connection.vendor == "postgresql" and fast
        assert ("synchronous_commit TO OFF" in queries[0]["sql"]) is fast_path
        assert len(queries) == 1  # one round trip either way
        # The write committed: another connection-level read sees it, and no
        # transaction is left open on the worker's connection.
        assert not connection.in_atomic_block
        if connection.vendor == "postgresql":
            assert connection.connection.info.transaction_status == 0  # idle
        assert Job.objects.get(pk=job.pk).workspace == {"step": 1}
        stale = Job.objects.get(pk=job.pk)
        stale.lease_token = None
        assert not stale.fenced_update(state="COMPLETE")
        assert Job.objects.get(pk=job.pk).state == "PROCESSING"


def test_fast_commit_is_not_used_inside_an_open_transaction():
    from django.db import transaction

    job = claim_one()
    with transaction.atomic(), CaptureQueriesContext(connection) as queries:
        assert job.fenced_update(workspace={"inside": True})
    assert "synchronous_commit" not in queries[0]["sql"]
    assert Job.objects.get(pk=job.pk).workspace == {"inside": True}
