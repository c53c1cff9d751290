"""The threads mode's parts: a slot (one job at a time, in its own thread) and the wake-ups.

A slot is :class:`~.loop.Worker`'s loop (claim, run, checkpoint) on the pool's
shared state: one shutdown, one pacing, one waiter. It has its own database
connection (Django's connections are per thread) and its own
:class:`~.held.HeldJobs`, whose leases the pool's one heartbeat renews.
"""

from __future__ import annotations

import copy
import logging
import threading
from typing import Any

from django.db import DatabaseError, connections

from .. import backends
from ..engine import once
from ..exceptions import JobLost, WorkerInterrupted
from ..models import Job
from ..timeouts import StepWatch, watch_steps
from .loop import Worker
from .outcomes import Outcomes

logger = logging.getLogger(__name__)


class Slot(Worker):
    """One slot of a :class:`~.threads.ThreadedWorker`: Worker's loop in a daemon thread.

    Made as a Worker (which checks and completes the arguments), then given the pool's
    shared state by :meth:`join_pool`.
    """

    def join_pool(self, pool: Any, index: int) -> None:
        """Become slot ``index`` of ``pool`` (a :class:`~.threads.ThreadedWorker`)."""
        self.index = index
        self.worker_id = self.intake.worker_id = f"{pool.worker_id}/{index}"
        # The pool's shared state in place of a lone worker's own.
        self.shutdown_state = pool.shutdown_state
        self.persist.abort = pool.shutdown_state.abort
        self.pacing = pool.pacing
        self.drainer.held = pool  # a drain's rescue spares every slot's claims (pool.tokens)
        self.waiter = pool.wakeups.waiter()
        self.watch = StepWatch()  # the watchdog's view of this slot's timed step
        self.done = False  # this slot may start no more jobs (--max-jobs reached)
        self.exited = pool.changed
        self.thread = threading.Thread(
            target=self.work, name=f"django_dbq-slot-{index}", daemon=True
        )

    @property
    def stopping(self) -> bool:
        return self.shutdown_state.stopping or self.done

    def work(self) -> None:
        """The slot thread: claim and run jobs until the pool stops (or drains)."""
        watch_steps(self.watch)
        try:
            connection = connections[self.using]
            backends.for_connection(connection).prepare_worker_connection(connection)
            self._loop(self.waiter)
        except WorkerInterrupted:
            pass  # a second signal: the pool hands the jobs back
        except BaseException:
            logger.exception("Slot %s stopped by an error", self.index)
        finally:
            try:
                self.intake.release_unstarted()
            except BaseException:
                logger.warning("Slot %s: could not hand back its prefetched jobs", self.index)
            connections[self.using].close()
            self.exited.set()

    def _run(self, job: Job) -> None:
        if not self.pacing.reserve():
            # --max-jobs' starts are all taken: hand this one back (with the prefetched).
            self.held.finish_current()
            self.held.give_back([job])
            self.done = True
            return
        super()._run(job)

    def hand_back_running(self) -> None:
        """From another thread: release the running job, so this slot's later writes change nothing.

        The release is the claim's own fenced write (on a copy: the slot's instance is
        left alone), and takes the claim away: whatever the step does afterwards is
        fenced out. The attempt is given back, as when a second signal interrupts a step.
        """
        job = self.held.current
        if job is None:
            return
        try:
            Outcomes(copy.copy(job), once).release()
            logger.warning("Slot %s: handed job %s back at %s", self.index, job.pk, job.next_task)
        except (JobLost, DatabaseError) as error:
            logger.warning("Could not hand job %s back (%r); it ended or is rescued", job.pk, error)
        self.held.finish(job)


class Wakeups:
    """The pool's one waiter (PostgreSQL: LISTEN), in a thread: a notification wakes idle slots."""

    def __init__(self, poller: backends.Poller, poll_interval: float) -> None:
        self.poller = poller
        self.poll_interval = poll_interval
        self.lock = threading.Lock()
        self.event = threading.Event()  # replaced at each wake-up: the slots waiting hold it
        self.up = False
        self.thread = threading.Thread(target=self.run, name="django_dbq-waiter", daemon=True)

    def run(self) -> None:
        notified = False
        try:
            while not self.poller.stop.is_set():
                self.up = self.poller.listening()
                if notified:
                    # After listening(), which drops what is queued: whatever it dropped,
                    # the slots woken now look for work after it was committed.
                    self.wake_all()
                notified = self.poller.wait(self.poll_interval)
        except BaseException:
            logger.exception("The waiter thread stopped; the slots poll")
        finally:
            self.up = False
            self.wake_all()  # a shutdown: no slot waits out its poll interval
            self.poller.close()

    def wake_all(self) -> None:
        with self.lock:
            event, self.event = self.event, threading.Event()
        event.set()

    def waiter(self) -> SlotWaiter:
        return SlotWaiter(self)

    def close(self) -> None:
        self.thread.join(timeout=10)


class SlotWaiter(backends.Poller):
    """A slot's view of :class:`Wakeups`, in the shape of the database's waiter."""

    def __init__(self, wakeups: Wakeups) -> None:
        super().__init__(wakeups.poller.stop)
        self.wakeups = wakeups
        self.seen = wakeups.event

    def listening(self) -> bool:
        # Before the slot looks for work: a wake-up from now on ends its next wait.
        self.seen = self.wakeups.event
        return self.wakeups.up

    def wait(self, timeout: float) -> bool:
        if self.stop.is_set():
            return False
        return self.seen.wait(timeout)
