"""Prometheus metrics: the database's gauges, the view that serves them, a worker's counters."""

import datetime
import json
import re

import pytest
from django.contrib.auth.models import User
from django.utils import timezone
from prometheus_client import CollectorRegistry

from django_dbq.metrics.counters import WorkerMetrics
from django_dbq.metrics.gauges import QueueGauges
from django_dbq.models import Job
from tests.conftest import ROOT
from tests.helpers import run_steps

pytestmark = [pytest.mark.database, pytest.mark.django_db]

URL = "/dbq/metrics"


def gauges() -> CollectorRegistry:
    registry = CollectorRegistry(auto_describe=False)
    registry.register(QueueGauges())
    return registry


def make(state: str, queue: str = "default", **values) -> Job:
    job = Job.objects.create(name="noop", queue_name=queue)
    Job.objects.filter(pk=job.pk).update(state=state, **values)
    return job


def test_the_gauges_count_unfinished_jobs_by_queue_and_state():
    for _ in range(3):
        make("NEW")
    make("READY", queue="mail")
    make("PROCESSING", queue="mail", worker_id="host:1")
    make("PROCESSING", queue="mail", worker_id="host:2")
    make("STOPPING", queue="mail", worker_id="host:2")
    make("COMPLETE")
    make("FAILED", queue="mail")
    make("NEW", queue="mail", concurrency_key="account:1", concurrency_limit=1)
    make("WAITING", queue="mail", waiting_for=1)
    registry = gauges()
    value = registry.get_sample_value
    assert value("dbq_jobs", {"queue": "default", "state": "NEW"}) == 3
    assert value("dbq_jobs", {"queue": "mail", "state": "READY"}) == 1
    assert value("dbq_jobs", {"queue": "mail", "state": "NEW"}) == 1  # keyed
    assert value("dbq_jobs", {"queue": "mail", "state": "WAITING"}) == 1
    assert value("dbq_jobs", {"queue": "mail", "state": "PROCESSING"}) == 2
    assert value("dbq_jobs", {"queue": "mail", "state": "STOPPING"}) == 1
    assert value("dbq_jobs", {"queue": "default", "state": "COMPLETE"}) is None  # not read
    assert value("dbq_workers_busy", {"queue": "mail"}) == 2
    assert value("dbq_workers_busy", {"queue": "default"}) is None


def test_the_oldest_runnable_age_counts_from_run_after_and_skips_future_jobs():
    now = timezone.now()
    make("NEW", created=now - datetime.timedelta(seconds=600))
    make(
        "READY",
        created=now - datetime.timedelta(hours=5),
        run_after=now - datetime.timedelta(seconds=120),
    )
    make("NEW", queue="later", run_after=now + datetime.timedelta(hours=1))
    age = gauges().get_sample_value("dbq_oldest_runnable_job_age_seconds", {"queue": "default"})
    assert 600 <= age < 660
    assert (
        gauges().get_sample_value("dbq_oldest_runnable_job_age_seconds", {"queue": "later"}) is None
    )


def test_the_view_serves_the_gauges_to_staff_who_may_view_jobs(client, admin_client):
    make("NEW")
    response = admin_client.get(URL)
    assert response.status_code == 200
    assert response["Content-Type"].startswith("text/plain")
    assert 'dbq_jobs{queue="default",state="NEW"} 1.0' in response.content.decode()
    assert client.get(URL).status_code == 403  # anonymous
    User.objects.create_user("plain", password="pw", is_staff=True)
    client.login(username="plain", password="pw")
    assert client.get(URL).status_code == 403  # staff without the view permission


def test_a_workers_counters_follow_its_jobs():
    registry = CollectorRegistry()
    metrics = WorkerMetrics(registry)
    metrics.connect()
    try:
        Job.objects.create(name="chain")
        Job.objects.create(name="chain")
        Job.objects.create(name="failing")
        run_steps()
    finally:
        metrics.disconnect()
    value = registry.get_sample_value
    chain = {"name": "chain", "queue": "default"}
    # run_steps() runs one step per claim (django-db-queue 3.x's _process_job): each is a run.
    steps = len(Job.objects.filter(name="chain").first().definition.tasks)
    assert value("dbq_jobs_started_total", chain) == 2 * steps
    assert value("dbq_jobs_completed_total", chain) == 2
    assert value("dbq_jobs_failed_total", {"name": "failing", "queue": "default"}) == 1
    assert value("dbq_step_duration_seconds_count", chain) == 2 * steps
    assert value("dbq_job_wait_seconds_count", chain) == 2 * steps
    Job.objects.create(name="chain")
    run_steps()  # disconnected: no longer counted
    assert value("dbq_jobs_completed_total", chain) == 2


def test_the_grafana_dashboard_uses_only_metrics_that_exist():
    make("NEW", worker_id="host:1")
    make("PROCESSING", worker_id="host:1")
    registry = gauges()
    WorkerMetrics(registry)
    suffixes = {"counter": ["_total"], "histogram": ["_bucket", "_count", "_sum"], "gauge": [""]}
    names = {
        family.name + suffix for family in registry.collect() for suffix in suffixes[family.type]
    }
    dashboard = json.loads((ROOT / "docs" / "grafana-dashboard.json").read_text())
    used = {
        name
        for panel in dashboard["panels"]
        for target in panel["targets"]
        for name in re.findall(r"dbq_[a-z_]+", target["expr"])
    }
    assert used and used <= names, used - names
