"""Counters and histograms of one worker process, fed by the queue's signals."""

from __future__ import annotations

import threading
import time
import weakref
from typing import Any

from django.utils import timezone
from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram

from .. import signals
from ..models import Job

LABELS = ["name", "queue"]
# From a few milliseconds (no-op steps) to an hour.
DURATION_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 300, 900, 3600)
EVENTS = {
    "started": (signals.job_started, "Job runs started (again after a retry, release or rescue)."),
    "completed": (signals.job_completed, "Jobs completed."),
    "failed": (signals.job_failed, "Jobs failed for good."),
    "retried": (signals.job_retried, "Jobs this process set to run again after a failure."),
    "rescued": (signals.job_rescued, "Jobs taken back from a lost worker."),
    "cancelled": (signals.job_cancelled, "Jobs this process ended cancelled."),
}


class WorkerMetrics:
    """The counters of this process, in ``registry``; :meth:`connect` starts counting."""

    def __init__(self, registry: CollectorRegistry) -> None:
        self.counters = {
            event: Counter(f"dbq_jobs_{event}", text, LABELS, registry=registry)
            for event, (_, text) in EVENTS.items()
        }
        self.step_seconds = Histogram(
            "dbq_step_duration_seconds",
            "Seconds each step took, hooks included.",
            LABELS,
            buckets=DURATION_BUCKETS,
            registry=registry,
        )
        self.wait_seconds = Histogram(
            "dbq_job_wait_seconds",
            "Seconds from a job's creation (or its run_after) to the start of its run.",
            LABELS,
            buckets=DURATION_BUCKETS,
            registry=registry,
        )
        # Set by the worker that serves these metrics: one series per live worker.
        self.slots = Gauge(
            "dbq_worker_slots",
            "Jobs this worker process can run at once.",
            ["queues", "mode"],
            registry=registry,
        )
        # When each job running here began its current step (steps end in their threads);
        # an entry goes with its job's instance, however the run ends.
        self.step_began: weakref.WeakKeyDictionary = weakref.WeakKeyDictionary()
        self.lock = threading.Lock()

    def connect(self) -> None:
        for event, (signal, _) in EVENTS.items():
            signal.connect(
                self.counting(event), sender=Job, weak=False, dispatch_uid=f"dbq-{event}"
            )
        signals.job_started.connect(self.started, sender=Job, weak=False, dispatch_uid="dbq-wait")
        signals.step_finished.connect(self.stepped, sender=Job, weak=False, dispatch_uid="dbq-step")

    def disconnect(self) -> None:
        for event, (signal, _) in EVENTS.items():
            signal.disconnect(sender=Job, dispatch_uid=f"dbq-{event}")
        signals.job_started.disconnect(sender=Job, dispatch_uid="dbq-wait")
        signals.step_finished.disconnect(sender=Job, dispatch_uid="dbq-step")

    def counting(self, event: str):
        counter = self.counters[event]

        def count(sender: Any, job: Any, **kwargs: Any) -> None:
            counter.labels(job.name, job.queue_name).inc()

        return count

    def started(self, sender: Any, job: Any, **kwargs: Any) -> None:
        with self.lock:
            self.step_began[job] = time.monotonic()
        since = job.run_after or job.created
        if since is not None:
            waited = (timezone.now() - since).total_seconds()
            self.wait_seconds.labels(job.name, job.queue_name).observe(max(waited, 0.0))

    def stepped(self, sender: Any, job: Any, **kwargs: Any) -> None:
        now = time.monotonic()
        with self.lock:
            began = self.step_began.get(job)
            if job.next_task:
                self.step_began[job] = now
            else:
                self.step_began.pop(job, None)
        if began is not None:
            self.step_seconds.labels(job.name, job.queue_name).observe(now - began)
