"""OpenTelemetry: a job continues the trace it was created in, one span per step."""

import pytest
from opentelemetry import trace
from opentelemetry.trace import SpanKind, StatusCode

from django_dbq.models import Job
from tests import tracing_setup
from tests.helpers import run_steps

pytestmark = [pytest.mark.database, pytest.mark.django_db(transaction=True)]


@pytest.fixture
def spans():
    tracing_setup.install()
    tracing_setup.MEMORY.clear()
    yield tracing_setup.MEMORY
    tracing_setup.MEMORY.clear()


def step_spans(exporter, job):
    return [
        s for s in exporter.get_finished_spans() if s.attributes.get("dbq.job.id") == str(job.pk)
    ]


def test_a_job_created_in_a_request_continues_its_trace_step_by_step(spans):
    tracer = trace.get_tracer("tests")
    with tracer.start_as_current_span("POST /orders") as request:
        job = Job.objects.create(name="chain", queue_name="default")
    stored = Job.objects.get(pk=job.pk).trace_context
    request_context = request.get_span_context()
    assert stored["traceparent"].split("-")[1] == f"{request_context.trace_id:032x}"
    run_steps()
    steps = step_spans(spans, job)
    assert [s.attributes["dbq.step"] for s in steps] == list(job.definition.tasks)
    for span in steps:
        assert span.kind == SpanKind.CONSUMER
        assert span.context.trace_id == request_context.trace_id
        assert span.parent.span_id == request_context.span_id
        assert span.attributes["messaging.system"] == "django_dbq"
        assert span.attributes["messaging.destination.name"] == "default"
        assert span.attributes["dbq.job.name"] == "chain"
        assert span.attributes["dbq.attempt"] == 1


def test_a_job_created_outside_a_trace_stores_nothing_and_starts_its_own(spans):
    job = Job.objects.create(name="noop")
    assert Job.objects.get(pk=job.pk).trace_context is None
    run_steps()
    (span,) = step_spans(spans, job)
    assert span.parent is None


def test_a_failing_step_marks_its_span_as_an_error(spans):
    job = Job.objects.create(name="failing")
    run_steps()
    (span,) = step_spans(spans, job)
    assert span.status.status_code == StatusCode.ERROR
    assert [event.name for event in span.events] == ["exception"]
    assert span.events[0].attributes["exception.type"] == "ValueError"


def test_jobs_a_step_creates_join_the_steps_trace(spans):
    from django_dbq.workflows import Workflow

    flow = Workflow(name="traced")
    splitter = flow.add("splits", workspace={"parts": 2})
    flow.enqueue()
    run_steps()
    (split_span,) = [
        s for s in step_spans(spans, splitter) if s.attributes["dbq.step"].endswith("split")
    ]
    for part in Job.objects.filter(workflow=flow, name="part"):
        (part_span,) = step_spans(spans, part)
        assert part_span.context.trace_id == split_span.context.trace_id
        assert part_span.parent.span_id == split_span.context.span_id
