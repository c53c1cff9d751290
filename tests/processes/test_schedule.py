"""Recurring jobs with real workers: each tick is enqueued once, however many workers run."""

import re
import signal

import pytest

from django_dbq.models import Job
from tests.conftest import wait_for

pytestmark = [pytest.mark.processes, pytest.mark.django_db]


@pytest.mark.django_db(transaction=True)
def test_several_real_workers_enqueue_each_tick_once(start_worker):
    env = {"DJANGO_SETTINGS_MODULE": "tests.settings_schedule", "DBQ_LEASE_SECONDS": "2"}
    workers = [start_worker(env=env) for _ in range(3)]
    wait_for(lambda: Job.objects.filter(queue_name="cron-test").count() >= 4, what="4 ticks")
    for worker in workers:
        worker.signal(signal.SIGTERM)
    assert [worker.wait() for worker in workers] == [0, 0, 0]
    pattern = re.compile(r"Enqueued (\S+) for schedule every-second tick (.+)$", re.M)
    enqueued = [match for worker in workers for match in pattern.findall(worker.log())]
    ticks = [tick for _, tick in enqueued]
    assert len(ticks) >= 4
    assert len(ticks) == len(set(ticks)), f"a tick was enqueued twice: {sorted(ticks)}"
    jobs = Job.objects.filter(queue_name="cron-test")
    assert {str(pk) for pk in jobs.values_list("pk", flat=True)} == {pk for pk, _ in enqueued}
    assert all(job.workspace == {"from": "schedule"} and job.name == "noop" for job in jobs)
