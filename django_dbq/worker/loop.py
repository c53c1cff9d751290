"""The worker loop: claim, run, checkpoint, shut down cleanly.

Threads of one worker process, each with its own database connection:

- the main thread claims jobs and runs their steps (user code runs here);
- the heartbeat thread (:mod:`.heartbeat`) renews the leases of the jobs held here;
- the maintenance thread (:mod:`.maintenance`) rescues other workers' lapsed jobs
  and enqueues recurring jobs.

They share what they must, and no more: the jobs held (:class:`.held.HeldJobs`)
and the shutdown state (:class:`.shutdown.Shutdown`).
"""

from __future__ import annotations

import logging
import os
import socket
import threading
import time
import uuid
from collections.abc import Sequence
from typing import Any

from django.db import DatabaseError, connections

from .. import backends, conf, engine
from ..exceptions import WorkerInterrupted
from ..models import Job
from .drain import Drain
from .execution import JobRun
from .heartbeat import Heartbeat
from .held import HeldJobs
from .intake import Intake
from .maintenance import Maintenance
from .outages import PersistentWrites, close_if_broken, reset_connection
from .pacing import Pacing, refuse_unenforceable_timeouts
from .periodic import start_threads, stop_threads
from .shutdown import Shutdown, SignalHandlers

logger = logging.getLogger(__name__)


def default_worker_id() -> str:
    """A worker's name when it is given none: host, pid and a random part.

    A supervisor names its children itself, to rescue a dead child's jobs by name. The
    column holds 100 characters: a long host name loses its start, never the unique tail.
    """
    return f"{socket.gethostname()}:{os.getpid()}:{uuid.uuid4().hex[:8]}"


class Worker:
    """Claims jobs from ``queue_name`` (a name or a list of names) and runs them.

    ``run()`` loops until shutdown (with ``drain``, until no runnable job is left;
    with ``max_jobs``, until it has run that many jobs); ``_process_job()`` claims
    one job and runs one step, synchronously.
    """

    def __init__(
        self,
        queue_name: str | Sequence[str] = "default",
        rate_limit_in_seconds: float = 0,
        *,
        drain: bool = False,
        wait_retries: bool = False,
        using: str = "default",
        listen: bool | None = None,
        poll_interval: float | None = None,
        lease_seconds: float | None = None,
        batch_size: int | None = None,
        max_jobs: int | None = None,
        worker_id: str | None = None,
    ):
        names = [queue_name] if isinstance(queue_name, str) else list(queue_name)
        if not names or not all(conf.is_queue_name(n) for n in names):
            raise ValueError("Queue names must be non-empty strings of at most 100 characters.")
        self.queue_names = names
        self.queue_name = names[0]  # django-db-queue 3.x's attribute: the first queue
        self.drain = drain
        self.using = using
        self.listen = conf.get("DBQ_LISTEN") if listen is None else listen
        self.poll_interval = poll_interval or conf.get("DBQ_POLL_INTERVAL")
        self.lease_seconds = lease_seconds or conf.get("DBQ_LEASE_SECONDS")
        self.pacing = Pacing(
            rate_limit_in_seconds, batch_size or conf.get("DBQ_CLAIM_BATCH_SIZE"), max_jobs
        )
        self.rate_limit_in_seconds = rate_limit_in_seconds
        self.worker_id = (worker_id or default_worker_id())[-100:]  # the column's 100 characters
        self.alive = True  # django-db-queue 3.x's flag: False once a shutdown was asked for
        self.held = HeldJobs()
        self.shutdown_state = Shutdown()
        self.persist = PersistentWrites(using, self.lease_seconds, self.shutdown_state.abort)
        jobs = Job.objects.using(using)
        self.intake = Intake(
            jobs, names, self.worker_id, self.held, self.persist, poll_interval=self.poll_interval
        )
        self.drainer = Drain(self.intake, wait_retries=wait_retries, poll=self.poll_interval)
        self._threads: list[Heartbeat | Maintenance] = []

    # -- public API ---------------------------------------------------------

    @property
    def stopping(self) -> bool:
        return self.shutdown_state.stopping

    @property
    def current_job(self) -> Job | None:
        """The job running here (django-db-queue 3.x's attribute; 3.x tests set it by hand)."""
        return self.held.current

    @current_job.setter
    def current_job(self, job: Job | None) -> None:
        if job is None:
            self.held.finish_current()
        else:
            self.held.start(job)

    def shutdown(self, signum: int | None = None, frame: Any = None) -> None:
        """First call: finish the running step, release the rest, stop. Second: stop at once.

        Safe as a signal handler: it writes nothing itself while the worker runs
        (the heartbeat thread marks the running job ``STOPPING``); it only
        raises, to interrupt a task, while user code runs.
        """
        self.alive = False
        requests = self.shutdown_state.request()
        if requests == 1 and not self._threads and self.current_job is not None:
            # Driven by hand (django-db-queue 3.x style), not by run(): mark it now.
            engine.mark_stopping(self.current_job, self.using)
        self.shutdown_state.interrupt_task()

    @property
    def claimer(self) -> engine.Claimer:
        return self.intake.claimer

    def run(self) -> None:
        """Work until shut down (or drained); installs SIGTERM/SIGINT handlers."""
        self.shutdown_state.task_thread = threading.current_thread()
        refuse_unenforceable_timeouts()
        waiter = None
        handlers = SignalHandlers(self.shutdown)
        try:
            connection = connections[self.using]
            backends.for_connection(connection).prepare_worker_connection(connection)  # WAL
            waiter = self._make_waiter()
            self._threads = [
                Heartbeat(self.held, self.shutdown_state, self.using, self.lease_seconds),
                Maintenance(self.using, self.lease_seconds, held_here=self.held.tokens),
            ]
            start_threads(self._threads, self.shutdown_state)
            self._loop(waiter)
        except WorkerInterrupted:
            logger.warning("Stopped at once by a second signal")
        finally:
            try:
                self.intake.release_unstarted()
            except WorkerInterrupted:
                pass  # a third signal: the lease lapses and the jobs are rescued
            stop_threads(self._threads)
            self._threads = []
            if waiter is not None:
                waiter.close()
            handlers.restore()
            logger.info("Worker %s stopped", self.worker_id)

    def _process_job(self) -> None:
        """Claim one job and run one step of it (the django-db-queue 3.x test entry point)."""
        self.shutdown_state.task_thread = threading.current_thread()
        jobs = self.claimer.claim(1)
        if jobs:
            self.held.start(jobs[0])
            try:
                self._job_run(jobs[0]).run(one_step=True)
            finally:
                self.held.finish_current()

    def _make_waiter(self) -> backends.Poller:
        """The database's way to wait for work: LISTEN on PostgreSQL unless turned off."""
        backend = backends.for_alias(self.using)
        return backend.waiter(self.shutdown_state.graceful, self.queue_names, listen=self.listen)

    def _job_run(self, job: Job) -> JobRun:
        return JobRun(
            job,
            self.persist,
            task_scope=self.shutdown_state.task_scope(),
            lease_seconds=self.lease_seconds,
        )

    def _loop(self, waiter: backends.Poller) -> None:
        failures = 0
        while not self.stopping:
            try:
                waiter.listening()  # LISTEN before looking, so no notification falls between
                if not self.held.prefetched and self.intake.claim(self.pacing.batch_size()):
                    self.drainer.claimed()
                failures = 0
            except Exception as error:  # a bug or a row that cannot be read: never exit
                failures += 1
                if not isinstance(error, DatabaseError):
                    logger.exception("Claiming failed; retrying")
                self._reset_connection(error, failures)
                continue
            if not self.held.prefetched:
                if not self.drain:
                    # Notifications cut the wait short; the poll finds jobs whose run_after came.
                    waiter.wait(self.intake.idle_wait(self.poll_interval))
                    continue
                try:
                    if self.drainer.done(waiter):
                        return
                except DatabaseError as error:
                    failures += 1
                    self._reset_connection(error, failures)
                continue
            self.pacing.wait_turn(self.shutdown_state.graceful)
            try:
                job = None if self.stopping else self.intake.next()
            except DatabaseError as error:
                failures += 1
                self._reset_connection(error, failures)
                continue
            if job is None:
                continue
            try:
                self._run(job)
            except Exception as error:  # never let one job's trouble stop the worker
                failures += 1
                logger.exception(
                    "Error while running job %s; it is rescued once its lease lapses", job.pk
                )
                self._reset_connection(error, failures)

    def _run(self, job: Job) -> None:
        started = time.monotonic()
        try:
            self._job_run(job).run(should_stop=lambda: self.stopping)
        finally:
            self.held.finish_current()
            if self.pacing.ran_one(time.monotonic() - started):
                logger.info("Ran %s jobs (--max-jobs); stopping", self.pacing.jobs_run)
                self.shutdown_state.stopping = True
        close_if_broken(self.using)  # the task's own queries may have broken it

    def _reset_connection(self, error: Exception, failures: int) -> None:
        reset_connection(self.using, error, failures, self.shutdown_state.graceful.wait)
