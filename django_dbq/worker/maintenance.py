"""The maintenance thread: rescues lost workers' jobs and enqueues recurring jobs.

It is kept apart from the heartbeat because it may run user code (failure hooks,
creation hooks): however long that takes, heartbeats go on.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable, Collection

from ..models import Job
from ..schedule import Scheduler
from .periodic import Periodic, interval_for


class Maintenance(Periodic):
    """Rescues lapsed jobs of any worker except the claims this worker holds; enqueues schedules."""

    def __init__(
        self,
        using: str,
        lease_seconds: float,
        held_here: Callable[[], Collection[uuid.UUID]] = tuple,
    ):
        super().__init__(using, interval_for(lease_seconds), "django_dbq-maintenance")
        self.held_here = held_here
        self.scheduler = Scheduler(using)

    def tick(self) -> None:
        # Never this worker's own jobs: it is alive, and they run or wait here.
        Job.objects.using(self.using).rescue_lapsed(held_by_caller=self.held_here)
        self.scheduler.enqueue_due()

    def next_delay(self, delay: float) -> float:
        # Wake up at the next cron tick rather than up to a whole interval after it.
        due = self.scheduler.seconds_until_due()
        return delay if due is None else min(delay, max(due, 0.01))
