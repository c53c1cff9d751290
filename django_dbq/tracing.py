"""OpenTelemetry (the optional ``otel`` extra: ``opentelemetry-api``): a span per job step.

A job created while a span is current (a web request traced by your instrumentation)
stores that trace context on its row (``Job.trace_context``, W3C ``traceparent``); the
worker runs each step of the job in a ``CONSUMER`` span that continues it, so a trace
shows the request and the steps it caused, on whichever host they ran. Attributes:
``messaging.system`` (``django_dbq``), ``messaging.destination.name`` (the queue),
``dbq.job.id``, ``dbq.job.name``, ``dbq.step``, ``dbq.attempt``. A step that raises
records the exception and marks the span as an error.

Without ``opentelemetry-api`` installed nothing is stored and no span is made: each
hook below is one check of a module constant. With the API installed and no tracer
provider set (no SDK configured), no span is made either: the worker checks the
global provider before each step.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import AbstractContextManager, contextmanager, nullcontext
from typing import Any

try:
    from opentelemetry import propagate, trace
except ImportError:  # the extra is not installed
    trace = None


def current_trace_context() -> dict[str, str] | None:
    """The current span's context as a W3C carrier (``traceparent``...), or None."""
    if trace is None or not trace.get_current_span().get_span_context().is_valid:
        return None
    carrier: dict[str, str] = {}
    propagate.inject(carrier)
    return carrier or None


def tracing_configured() -> bool:
    """Whether spans would be recorded: the API installed and a tracer provider set.

    Until a provider is set, OpenTelemetry's global is a proxy whose spans record
    nothing; making them would cost each step about 15 microseconds for nothing.
    """
    return trace is not None and not isinstance(
        trace.get_tracer_provider(), trace.ProxyTracerProvider
    )


def step_span(job: Any, step: str) -> AbstractContextManager:
    """Run ``job``'s ``step`` inside a span continuing the trace it was created in (a
    shared no-op unless tracing is set up)."""
    return _step_span(job, step) if tracing_configured() else NO_SPAN


NO_SPAN = nullcontext()


@contextmanager
def _step_span(job: Any, step: str) -> Iterator[None]:
    parent = propagate.extract(job.trace_context) if job.trace_context else None
    tracer = trace.get_tracer("django_dbq")
    attributes = {
        "messaging.system": "django_dbq",
        "messaging.destination.name": job.queue_name,
        "dbq.job.id": str(job.pk),
        "dbq.job.name": job.name,
        "dbq.step": step,
        "dbq.attempt": job.attempts,
    }
    with tracer.start_as_current_span(
        f"{job.name} {step.rsplit('.', 1)[-1]}",
        context=parent,
        kind=trace.SpanKind.CONSUMER,
        attributes=attributes,
    ):
        yield
