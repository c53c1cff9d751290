"""``manage.py worker --metrics-port PORT``: this process's counters over HTTP."""

from __future__ import annotations

from prometheus_client import CollectorRegistry, start_http_server

from .counters import WorkerMetrics


def serve_worker_metrics(port: int, address: str = "0.0.0.0") -> WorkerMetrics:
    """Count this process's jobs and serve the counts on ``address:port`` (``/metrics``).

    ``OSError`` when the port cannot be listened on (taken, or privileged).
    """
    registry = CollectorRegistry(auto_describe=True)
    metrics = WorkerMetrics(registry)
    start_http_server(port, addr=address, registry=registry)
    metrics.connect()
    return metrics
