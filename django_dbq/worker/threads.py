"""The threads mode: ``concurrency`` jobs at once in one worker process, for IO-bound tasks.

Threads of one process, each with its own database connection (at most
``concurrency + 3``):

- ``concurrency`` slot threads (:class:`~.slots.Slot`), each running Worker's loop:
  claim (ahead, in batches), run a job's steps, checkpoint;
- one heartbeat thread renewing the leases of every job every slot holds, in one
  statement, and marking running jobs ``STOPPING`` once a shutdown began;
- one maintenance thread: rescues, schedules, and the step-timeout watchdog
  (:mod:`.watchdog`);
- one waiter (PostgreSQL: a LISTEN connection) whose wake-up wakes the idle slots.

The main thread only waits, and takes the signals. First signal: every running step
finishes and checkpoints, prefetched jobs are handed back, ``run()`` returns. Second
signal: a thread cannot be interrupted safely, so the main thread hands every running
job back itself (its claim released: the slot's later writes change nothing) and
returns; the slot threads are daemons and end with the process.
"""

from __future__ import annotations

import logging
import threading
import uuid
from collections.abc import Sequence
from typing import Any

from django.db import connections

from .. import backends, conf
from .heartbeat import Heartbeat
from .maintenance import Maintenance
from .outages import PersistentWrites
from .pacing import SharedPacing
from .periodic import start_threads, stop_threads
from .shutdown import Shutdown, SignalHandlers
from .slots import Slot, Wakeups
from .watchdog import Watchdog, WatchedMaintenance

logger = logging.getLogger(__name__)

# The exit status when stuck steps piled up: "temporary failure, try again" (EX_TEMPFAIL).
EXIT_STUCK = 75


class StuckSlots(SystemExit):
    """More than half of the slots were stuck in steps past their timeout: restart the process."""


class ThreadedWorker:
    """Runs up to ``concurrency`` jobs at once, one per slot thread; the Worker interface.

    ``max_jobs`` counts the jobs of the whole process: no more than that many start,
    and the process stops once they ended. ``rate_limit_in_seconds`` spaces the starts
    of the whole process.
    """

    def __init__(
        self,
        queue_name: str | Sequence[str] = "default",
        rate_limit_in_seconds: float = 0,
        *,
        concurrency: int = 1,
        listen: bool | None = None,
        max_jobs: int | None = None,
        worker_id: str | None = None,
        **options: Any,
    ) -> None:
        """``options``: Worker's ``drain``, ``wait_retries``, ``using``, ``poll_interval``,
        ``lease_seconds`` and ``batch_size``, which every slot takes."""
        if isinstance(concurrency, bool) or not isinstance(concurrency, int) or concurrency < 1:
            raise ValueError(f"concurrency must be a whole number >= 1, not {concurrency!r}.")
        # Each slot checks the arguments (ValueError, like Worker) and sets the defaults.
        self.slots = [
            Slot(queue_name, rate_limit_in_seconds, listen=False, **options)
            for _ in range(concurrency)
        ]
        first = self.slots[0]
        self.concurrency = concurrency
        self.queue_names, self.queue_name = first.queue_names, first.queue_name
        self.rate_limit_in_seconds = rate_limit_in_seconds
        self.drain, self.using = first.drain, first.using
        self.poll_interval, self.lease_seconds = first.poll_interval, first.lease_seconds
        self.listen = conf.get("DBQ_LISTEN") if listen is None else listen
        self.pacing = SharedPacing(rate_limit_in_seconds, first.pacing.max_batch, max_jobs)
        # Room for the slot's "/index" in the 100-character column.
        self.worker_id = (worker_id or first.worker_id)[-(99 - len(str(concurrency))) :]
        self.alive = True
        self.shutdown_state = Shutdown()
        self.changed = threading.Event()  # a slot exited, a signal came, or slots got stuck
        self.recycle = 0  # the number of stuck slots, once they piled up
        waiter = backends.for_alias(self.using).waiter(
            self.shutdown_state.graceful, self.queue_names, listen=self.listen
        )
        self.wakeups = Wakeups(waiter, self.poll_interval)
        for index, slot in enumerate(self.slots):
            slot.join_pool(self, index)
        self.watchdog = Watchdog(
            self.slots,
            PersistentWrites(self.using, self.lease_seconds, self.shutdown_state.abort),
            self._stuck_slots_piled_up,
        )
        self._threads: list[Heartbeat | Maintenance] = []

    @property
    def stopping(self) -> bool:
        return self.shutdown_state.stopping

    def tokens(self) -> list[uuid.UUID]:
        """The claim tokens of every job every slot holds (a rescue must spare them)."""
        return [token for slot in self.slots for token in slot.held.tokens()]

    def shutdown(self, signum: int | None = None, frame: Any = None) -> None:
        """First call: finish the running steps, release the rest, stop. Second: hand back, stop.

        Safe as a signal handler: it sets flags and events and writes nothing; the
        main thread (in :meth:`run`) does what a second request asks.
        """
        self.alive = False
        self.shutdown_state.request()

    def run(self) -> None:
        """Work until shut down (or drained, or ``max_jobs`` ran); installs signal handlers."""
        handlers = SignalHandlers(self.shutdown)
        self._threads = [
            Heartbeat(
                [slot.held for slot in self.slots],
                self.shutdown_state,
                self.using,
                self.lease_seconds,
            ),
            WatchedMaintenance(self.using, self.lease_seconds, self.tokens, self.watchdog),
        ]
        logger.info(
            "Worker %s: %s slot threads on queue(s) %s",
            self.worker_id,
            self.concurrency,
            ", ".join(self.queue_names),
        )
        try:
            start_threads(self._threads, self.shutdown_state)
            self.shutdown_state.wakes.append(self.changed)
            self.wakeups.thread.start()
            for slot in self.slots:
                slot.thread.start()
            self._wait_for_slots()
        finally:
            self._stop()
            handlers.restore()
        if self.recycle:
            logger.error("Worker %s stopped: %s slots were stuck", self.worker_id, self.recycle)
            raise StuckSlots(EXIT_STUCK)
        logger.info("Worker %s stopped", self.worker_id)

    def _wait_for_slots(self) -> None:
        """Until every slot that is not stuck has exited, or a second request came."""
        while True:
            self.changed.clear()
            if self.shutdown_state.abort.is_set():
                self._hand_back_all()
                return
            working = [
                slot
                for slot in self.slots
                if slot.thread.is_alive() and not self.watchdog.is_stuck(slot)
            ]
            if not working:
                return
            # The timeout is a safety net: exits, signals and pile-ups set ``changed``.
            self.changed.wait(1.0)

    def _hand_back_all(self) -> None:
        logger.warning("Stopping at once (second signal): handing the running jobs back")
        for slot in self.slots:
            slot.hand_back_running()
            try:
                slot.intake.release_unstarted()
            except BaseException:
                logger.warning("Could not hand back slot %s's prefetched jobs", slot.index)

    def _stuck_slots_piled_up(self, stuck: int) -> None:
        """(the maintenance thread) Too many slots stuck: take no more jobs; exit non-zero."""
        logger.error(
            "%s of %s slots are stuck in steps past their timeout: taking no more jobs; "
            "the process exits with status %s once the others finished",
            stuck,
            self.concurrency,
            EXIT_STUCK,
        )
        self.recycle = stuck
        self.shutdown_state.stopping = True
        self.shutdown_state.graceful.set()  # the waiter wakes the idle slots
        self.changed.set()

    def _stop(self) -> None:
        self.shutdown_state.stopping = True
        self.shutdown_state.graceful.set()
        stop_threads(self._threads)
        self._threads = []
        self.wakeups.close()
        connections[self.using].close()  # the main thread's, if a hand-back opened one
