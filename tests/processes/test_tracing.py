"""A real worker continues the trace a job was created in (OpenTelemetry's SDK in both)."""

import json
import signal

import pytest
from opentelemetry import trace

from django_dbq.models import Job
from tests import tracing_setup
from tests.conftest import wait_for
from tests.helpers import row

pytestmark = [pytest.mark.processes, pytest.mark.django_db(transaction=True)]


@pytest.mark.parametrize("mode", ["single", "async"])
def test_a_workers_step_spans_continue_the_request_that_created_the_job(
    start_worker, tmp_path, mode
):
    tracing_setup.install()
    with trace.get_tracer("tests").start_as_current_span("POST /orders") as request:
        jobs = [Job.objects.create(name="chain"), Job.objects.create(name="failing")]
    spans_file = tmp_path / "spans.jsonl"
    env = {
        "DJANGO_SETTINGS_MODULE": "tests.settings_tracing",
        "DBQ_TEST_SPANS_FILE": str(spans_file),
    }
    args = () if mode == "single" else ("--mode", "async", "--concurrency", "2")
    worker = start_worker(*args, env=env)
    wait_for(
        lambda: all(row(job)["state"] in ("COMPLETE", "FAILED") for job in jobs), what="the jobs"
    )
    worker.signal(signal.SIGTERM)
    assert worker.wait() == 0, worker.log()[-3000:]
    spans = [json.loads(line) for line in spans_file.read_text().splitlines()]
    context = request.get_span_context()
    mine = [
        span for span in spans if span["attributes"].get("dbq.job.id") in {str(j.pk) for j in jobs}
    ]
    assert len(mine) == len(jobs[0].definition.tasks) + 1  # three steps, one failed step
    for span in mine:
        assert span["trace_id"] == context.trace_id
        assert span["parent_id"] == context.span_id
