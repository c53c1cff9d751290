"""``manage.py worker --metrics-port PORT``: this process's counters over HTTP."""

from __future__ import annotations

from prometheus_client import CollectorRegistry, start_http_server

from .counters import WorkerMetrics


def serve_worker_metrics(
    port: int,
    address: str = "0.0.0.0",
    *,
    queues: str = "default",
    mode: str = "single",
    slots: int = 1,
) -> WorkerMetrics:
    """Count this process's jobs and serve the counts on ``address:port`` (``/metrics``).

    Besides the counters, ``dbq_worker_slots{queues,mode}`` says that this worker is alive
    and how many jobs it runs at once: ``count(dbq_worker_slots)`` is the workers alive,
    ``sum(...)`` their capacity. ``OSError`` when the port cannot be listened on (taken,
    or privileged).
    """
    registry = CollectorRegistry(auto_describe=True)
    metrics = WorkerMetrics(registry)
    metrics.slots.labels(queues, mode).set(slots)
    start_http_server(port, addr=address, registry=registry)
    metrics.connect()
    return metrics
