"""The async mode: up to ``concurrency`` jobs in flight on one event loop, for async tasks.

The main thread runs an asyncio event loop. Each job in flight is a task on it,
running :meth:`~.execution.JobRun.work` (the step loop every mode runs) with
:class:`~.async_calls.LoopCalls`: ``async def`` steps (JOBS tasks and Django Tasks)
are awaited on the loop, so many wait at once and may share async clients; a
step's timeout cancels its coroutine. Synchronous steps and hooks run in a small
step pool, so they never block the loop.

The loop itself never queries the database. Claims, checkpoints and outcomes (the
synchronous ORM, fenced on the claim as in every mode) run in a fixed bookkeeping
pool of :data:`BOOKKEEPING_THREADS` threads. With the heartbeat thread (it renews
every held lease in one statement), the maintenance thread and the waiter (LISTEN on
PostgreSQL), the worker holds about six connections, whatever its concurrency.

First signal: no more claims; running steps finish and checkpoint, their jobs are
handed back at their next step, prefetched jobs are handed back. Second signal:
running steps are cancelled (a thread cannot be: its job is handed back all the
same, and its later writes change nothing) and their jobs handed back, their
attempts given back, as the threads mode does.
"""

from __future__ import annotations

import asyncio
import logging
import uuid
from collections.abc import Sequence
from typing import Any

from django.db import DatabaseError, connections

from .. import backends
from ..models import Job
from .async_calls import DaemonPool, back_off, closing_on_error
from .async_lanes import Lanes
from .heartbeat import Heartbeat
from .loop import Worker
from .maintenance import Maintenance
from .pacing import SharedPacing
from .periodic import start_threads, stop_threads
from .shutdown import SignalHandlers
from .slots import Wakeups

logger = logging.getLogger(__name__)


# Threads (each with a database connection) for the queue's own reads and writes.
BOOKKEEPING_THREADS = 3
# At most this many synchronous steps run at once (threads, each with a connection if used).
STEP_THREADS = 4


class AsyncWorker:
    """Runs up to ``concurrency`` jobs at once on one event loop; the Worker interface.

    ``max_jobs`` and ``rate_limit_in_seconds`` count and space the jobs of the whole
    process, as in the threads mode.
    """

    def __init__(
        self,
        queue_name: str | Sequence[str] = "default",
        rate_limit_in_seconds: float = 0,
        *,
        concurrency: int = 1,
        listen: bool | None = None,
        max_jobs: int | None = None,
        **options: Any,
    ) -> None:
        """``options``: Worker's ``drain``, ``wait_retries``, ``using``, ``poll_interval``,
        ``lease_seconds``, ``batch_size`` and ``worker_id``."""
        if isinstance(concurrency, bool) or not isinstance(concurrency, int) or concurrency < 1:
            raise ValueError(f"concurrency must be a whole number >= 1, not {concurrency!r}.")
        # A Worker checks the arguments and holds the claiming side: intake, drain, persist.
        self.core = core = Worker(
            queue_name, rate_limit_in_seconds, listen=listen, max_jobs=max_jobs, **options
        )
        self.concurrency = concurrency
        self.queue_names, self.queue_name = core.queue_names, core.queue_name
        self.rate_limit_in_seconds = rate_limit_in_seconds
        self.drain, self.using, self.listen = core.drain, core.using, core.listen
        self.poll_interval, self.lease_seconds = core.poll_interval, core.lease_seconds
        self.worker_id = core.worker_id
        self.pacing = SharedPacing(rate_limit_in_seconds, core.pacing.max_batch, max_jobs)
        self.alive = True
        self.shutdown_state = core.shutdown_state
        self.intake, self.persist = core.intake, core.persist
        self.drainer = core.drainer
        self.drainer.held = self  # a drain's rescue spares every job in flight (self.tokens)
        self.lanes = Lanes(concurrency, self)
        self.loop: asyncio.AbstractEventLoop | None = None
        self.bookkeeping: DaemonPool | None = None
        self.steps: DaemonPool | None = None

    @property
    def stopping(self) -> bool:
        return self.shutdown_state.stopping

    def tokens(self) -> list[uuid.UUID]:
        """The claim tokens of every job held here (a rescue must spare them)."""
        return [*self.intake.held.tokens(), *self.lanes.tokens()]

    def shutdown(self, signum: int | None = None, frame: Any = None) -> None:
        """First call: finish the running steps, release the rest, stop. Second: hand back, stop.

        Safe as a signal handler: it sets flags and events and asks the loop to look.
        """
        self.alive = False
        self.shutdown_state.request()
        if self.loop is not None:
            try:
                self.loop.call_soon_threadsafe(self._requested)
            except RuntimeError:
                pass  # the loop has closed: the worker is stopping anyway

    def run(self) -> None:
        """Work until shut down (or drained, or ``max_jobs`` ran); installs signal handlers."""
        handlers = SignalHandlers(self.shutdown)
        connection = connections[self.using]
        backends.for_connection(connection).prepare_worker_connection(connection)  # WAL
        connection.close()  # this thread runs the loop, which never queries
        waiter = backends.for_alias(self.using).waiter(
            self.shutdown_state.graceful, self.queue_names, listen=self.listen
        )
        wakeups = Wakeups(waiter, self.poll_interval)
        self.bookkeeping = DaemonPool(BOOKKEEPING_THREADS, "django_dbq-bookkeeping")
        self.steps = DaemonPool(min(self.concurrency, STEP_THREADS), "django_dbq-step")
        threads = [
            Heartbeat(
                [self.intake.held, *self.lanes.holders()],
                self.shutdown_state,
                self.using,
                self.lease_seconds,
            ),
            Maintenance(self.using, self.lease_seconds, held_here=self.tokens),
        ]
        logger.info(
            "Worker %s: up to %s jobs at once on an event loop, queue(s) %s",
            self.worker_id,
            self.concurrency,
            ", ".join(self.queue_names),
        )
        try:
            start_threads(threads, self.shutdown_state)
            wakeups.thread.start()
            asyncio.run(self._main(wakeups.waiter()))
        finally:
            self.shutdown_state.stopping = True
            self.shutdown_state.graceful.set()
            stop_threads(threads)
            wakeups.close()
            self.bookkeeping.shutdown(wait=not self.shutdown_state.abort.is_set())
            self.steps.shutdown(wait=False)
            handlers.restore()
        logger.info("Worker %s stopped", self.worker_id)

    async def _main(self, waiter: backends.Poller) -> None:
        self.loop = asyncio.get_running_loop()
        self.lanes.changed = asyncio.Event()
        try:
            await self._claim_and_start(waiter)
        finally:
            await self._finish()
            self.loop = None

    def _io(self, function: Any, *args: Any) -> Any:
        """Run the worker's own ``function`` in the bookkeeping pool."""
        return self.loop.run_in_executor(
            self.bookkeeping, closing_on_error, self.using, function, args
        )

    async def _claim_and_start(self, waiter: backends.Poller) -> None:
        failures = 0
        held, changed = self.intake.held, self.lanes.changed
        while not self.stopping:
            room = self.lanes.room(self.pacing)
            if not room:
                # Every lane is busy, or --max-jobs' starts are taken (the last job to end
                # stops the worker): wait for a job to end, or a signal.
                changed.clear()
                await changed.wait()
                continue
            if not held.prefetched:
                try:
                    claimed = await self._io(self._claim, waiter, room)
                    failures = 0
                except Exception as error:  # a bug or a row that cannot be read: never exit
                    failures += 1
                    if not isinstance(error, DatabaseError):
                        logger.exception("Claiming failed; retrying")
                    await back_off(error, failures, self.lanes.changed)
                    continue
                if not claimed:
                    if await self._idle(waiter):
                        return
                    continue
            if self.rate_limit_in_seconds:
                await self.loop.run_in_executor(
                    None, self.pacing.wait_turn, self.shutdown_state.graceful
                )
            try:
                job = None if self.stopping else await self._io(self.intake.next)
            except DatabaseError as error:
                failures += 1
                await back_off(error, failures, self.lanes.changed)
                continue
            if job is not None:
                self._start(job)

    def _claim(self, waiter: backends.Poller, room: int) -> list[Job]:
        """(bookkeeping pool) Claim up to ``room`` jobs, so none waits for a lane."""
        waiter.listening()  # before looking, so no notification falls between
        jobs = self.intake.claim(min(self.pacing.batch_size(), room))
        if jobs:
            self.drainer.claimed()
        return jobs

    async def _idle(self, waiter: backends.Poller) -> bool:
        """After a claim that found nothing: wait for work; True when a drain is done."""
        if self.drain and self.lanes.idle:
            try:
                return await self._io(self.drainer.done, waiter)
            except DatabaseError as error:
                await back_off(error, 1, self.lanes.changed)
                return False
        # Notifications cut the wait short; the poll finds jobs whose run_after came.
        wait = await self._io(self.intake.idle_wait, self.poll_interval)  # may read the clock
        await self.loop.run_in_executor(None, waiter.wait, wait)
        return False

    def _start(self, job: Job) -> None:
        if self.stopping or not self.pacing.reserve():
            # Stopping (or no --max-jobs start left): it goes back with the prefetched ones.
            self.intake.held.finish_current()
            self.intake.held.give_back([job])
            return
        self.lanes.start(job)

    def _requested(self) -> None:
        """(on the loop) A signal came: look again; on the second, stop the running steps."""
        self.lanes.changed.set()
        if self.shutdown_state.abort.is_set():
            logger.warning("Stopping at once (second signal): handing the running jobs back")
            self.lanes.interrupt()

    async def _finish(self) -> None:
        """Let the jobs in flight end (a second signal interrupts them); hand back the rest."""
        await self.lanes.wait()
        try:
            await self._io(self.intake.release_unstarted)
        except BaseException:
            logger.warning("Could not hand back the prefetched jobs; they will be rescued")
