"""Wake-ups in real workers: strange queue names end to end (NOTIFY on PostgreSQL), --no-listen."""

import signal

import pytest
from django.db import connection

from django_dbq.models import Job
from tests.conftest import wait_for
from tests.helpers import STRANGE_QUEUES

pytestmark = [pytest.mark.processes, pytest.mark.django_db(transaction=True)]


@pytest.mark.parametrize("queue", STRANGE_QUEUES, ids=["quotes", "spaces", "unicode", "long"])
def test_strange_queue_names_work_end_to_end(start_worker, queue):
    # A long poll interval: on PostgreSQL the second job can only be seen in time through NOTIFY.
    poll = "30" if connection.vendor == "postgresql" else "0.2"
    worker = start_worker(queue, env={"DBQ_POLL_INTERVAL": poll})
    first = Job.objects.create(name="noop", queue_name=queue)
    wait_for(lambda: Job.objects.get(pk=first.pk).state == "COMPLETE", what="the first job")
    second = Job.objects.create(name="chain", queue_name=queue, workspace={"input": 1})
    wait_for(
        lambda: Job.objects.get(pk=second.pk).state == "COMPLETE",
        timeout=20,
        what="the job enqueued while the worker waits",
    )
    assert Job.objects.get(pk=second.pk).workspace["three"] == 7
    assert Job.objects.filter(queue_name=queue).count() == 2
    assert Job.objects.get(pk=second.pk).queue_name == queue
    worker.signal(signal.SIGTERM)
    assert worker.wait() == 0
    assert "Traceback" not in worker.log()


def test_no_listen_flag_polls(start_worker):
    worker = start_worker("--no-listen", env={"DBQ_POLL_INTERVAL": "0.2"})
    wait_for(lambda: "Starting job worker" in worker.log(), what="the start line")
    job = Job.objects.create(name="noop")
    wait_for(lambda: Job.objects.get(pk=job.pk).state == "COMPLETE", what="the job")
    worker.signal(signal.SIGTERM)
    assert worker.wait() == 0
