"""The async mode's jobs in flight: a lane per job, each job a task on the event loop."""

from __future__ import annotations

import asyncio
import logging
import time
import uuid
from typing import Any

from ..exceptions import WorkerInterrupted
from ..models import Job
from .async_calls import LoopCalls
from .execution import JobRun
from .held import HeldJobs
from .outages import close_if_broken

logger = logging.getLogger(__name__)


class Lane:
    """Room for one job in flight: its held job (whose lease the heartbeat renews), its task."""

    def __init__(self) -> None:
        self.held = HeldJobs()
        self.calls: LoopCalls | None = None
        self.task: asyncio.Task | None = None


class Lanes:
    """Up to ``concurrency`` jobs of ``worker`` (an ``AsyncWorker``) in flight, each a task."""

    def __init__(self, concurrency: int, worker: Any) -> None:
        self.all = [Lane() for _ in range(concurrency)]
        self.free = list(self.all)
        self.worker = worker
        self.changed: asyncio.Event | None = None  # (on the loop) a job ended, or a signal came

    def holders(self) -> list[HeldJobs]:
        return [lane.held for lane in self.all]

    def tokens(self) -> list[uuid.UUID]:
        return [token for lane in self.all for token in lane.held.tokens()]

    def room(self, pacing: Any) -> int:
        """How many more jobs may start now: the free lanes, within --max-jobs' starts left."""
        room = len(self.free)
        if pacing.max_jobs:
            room = min(room, pacing.max_jobs - pacing.reserved)
        return max(room, 0)

    @property
    def idle(self) -> bool:
        return len(self.free) == len(self.all)

    def start(self, job: Job) -> None:
        """(on the loop) Run ``job``, the intake's current one, in a free lane."""
        worker = self.worker
        lane = self.free.pop()
        lane.held.start(job)  # held by the lane before the intake lets go: always renewed
        worker.intake.held.finish_current()
        lane.calls = LoopCalls(worker.bookkeeping, worker.steps)
        lane.task = asyncio.ensure_future(self._run(lane, job))

    async def _run(self, lane: Lane, job: Job) -> None:
        worker = self.worker
        started = time.monotonic()
        run = JobRun(
            job,
            worker.persist,
            task_scope=worker.shutdown_state.task_scope(),
            lease_seconds=worker.lease_seconds,
            calls=lane.calls,
        )
        try:
            await run.work(should_stop=lambda: worker.stopping)
            await lane.calls.io(close_if_broken, worker.using)  # the hooks may have broken it
        except WorkerInterrupted:
            pass  # a second signal: the run handed the job back
        except Exception:  # never let one job's trouble stop the worker
            logger.exception(
                "Error while running job %s; it is rescued once its lease lapses", job.pk
            )
        finally:
            lane.held.finish_current()
            lane.task = lane.calls = None
            self.free.append(lane)
            if worker.pacing.ran_one(time.monotonic() - started):
                logger.info("Ran %s jobs (--max-jobs); stopping", worker.pacing.jobs_run)
                worker.shutdown_state.stopping = True
            self.changed.set()

    def interrupt(self) -> None:
        """(on the loop) Stop every running step at once: a second signal."""
        for lane in self.all:
            if lane.calls is not None:
                lane.calls.interrupt()

    async def wait(self) -> None:
        """Until every job in flight has ended (or been handed back)."""
        running = [lane.task for lane in self.all if lane.task is not None]
        if running:
            await asyncio.gather(*running, return_exceptions=True)
