"""The worker loop: claim, run, checkpoint, renew leases, shut down cleanly.

Threads of one worker process, each with its own database connection:

- the main thread claims jobs and runs their steps (user code runs here);
- the heartbeat thread renews the leases of the jobs this worker holds, marks the
  running job ``STOPPING`` once a shutdown began, and hands back prefetched jobs
  that wait behind a long-running one;
- the maintenance thread rescues other workers' lapsed jobs and enqueues
  recurring jobs (it may run user hooks, so it is kept apart from the heartbeat).
"""

from __future__ import annotations

import logging
import os
import signal
import socket
import threading
import time
import uuid
from collections.abc import Callable, Sequence
from typing import Any

from django.core.exceptions import ImproperlyConfigured
from django.db import DatabaseError, connections
from django.utils import timezone

from . import backends, conf, leases
from .claim import Claimer
from .definitions import get_definitions
from .exceptions import JobLost, WorkerInterrupted
from .execution import JobRun
from .interrupts import SHUTDOWN_SIGNALS, TaskScope, set_events
from .maintenance import Heartbeat, Maintenance, mark_stopping
from .models import Job
from .outages import TRANSIENT_ERRORS, reset_connection
from .rescue import rescue_lapsed_jobs
from .timeouts import can_enforce_timeouts

logger = logging.getLogger(__name__)

# A batch is sized so that it holds about this much work (seconds).
BATCH_WINDOW = 0.1
# Prefetched jobs waiting behind a job that has run this long are handed back.
PREFETCH_PATIENCE = 1.0
# A prefetched job is started only after its cancel flag was read this recently:
# a cancel made while it waited behind other jobs stops it before its first step.
CANCEL_CHECK_INTERVAL = 0.02


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
    ):
        names = [queue_name] if isinstance(queue_name, str) else list(queue_name)
        if not names or not all(conf.is_queue_name(n) for n in names):
            raise ValueError("Queue names must be non-empty strings of at most 100 characters.")
        if isinstance(rate_limit_in_seconds, bool) or not rate_limit_in_seconds >= 0:
            raise ValueError(
                f"rate_limit_in_seconds must be at least 0, not {rate_limit_in_seconds!r}."
            )
        if max_jobs is not None:
            conf.require_whole_number("max_jobs", max_jobs)
        self.max_jobs = max_jobs
        self.jobs_run = 0
        self.queue_names = names
        self.queue_name = names[0]
        self.rate_limit_in_seconds = rate_limit_in_seconds
        self.drain = drain
        # With drain: also wait for failed or snoozed jobs whose retry is due later.
        self.wait_retries = wait_retries
        self.using = using
        self.listen = conf.get("DBQ_LISTEN") if listen is None else listen
        self.poll_interval = poll_interval or conf.get("DBQ_POLL_INTERVAL")
        self.lease_seconds = lease_seconds or conf.get("DBQ_LEASE_SECONDS")
        self.batch_size = (
            1 if rate_limit_in_seconds else batch_size or conf.get("DBQ_CLAIM_BATCH_SIZE")
        )
        # The column holds 100 characters: keep the unique tail of a long host name.
        self.worker_id = f"{socket.gethostname()}:{os.getpid()}:{uuid.uuid4().hex[:8]}"[-100:]
        self.alive = True
        self.stopping = False
        self.current_job: Job | None = None
        self.current_job_started = 0.0
        self.prefetched: list[Job] = []
        # Guards ``prefetched`` and ``current_job`` between the main and heartbeat threads.
        self.lock = threading.Lock()
        self.stop_event = threading.Event()  # first signal: finish the step, then stop
        self.abort = threading.Event()  # second signal: stop at once
        self.in_task = False
        self.seconds_per_job: float | None = None
        self.last_job_started = 0.0
        self.cancel_flags_read_at = 0.0
        self._claimer: Claimer | None = None
        self._signals = 0
        self._heartbeat: Heartbeat | None = None
        self._running_in: threading.Thread | None = None
        self._maintenance: Maintenance | None = None

    # -- public API ---------------------------------------------------------

    def shutdown(self, signum: int | None = None, frame: Any = None) -> None:
        """First call: finish the running step, release the rest, stop. Second: stop at once.

        Safe as a signal handler: it writes nothing itself while the worker runs
        (the heartbeat thread marks the running job ``STOPPING``); it only
        raises, to interrupt a task, while user code runs.
        """
        self._signals += 1
        self.alive = False
        self.stopping = True
        threads = [t for t in (self._heartbeat, self._maintenance) if t is not None]
        events = [self.stop_event, *(t.wake for t in threads)]
        if self._signals > 1:
            events.append(self.abort)
        set_events(events)
        if not threads and self.current_job is not None and self._signals == 1:
            # Driven by hand (django-db-queue 3.x style), not by run(): mark it now.
            mark_stopping(self.current_job, self.using)
        if (
            self._signals > 1
            and self.in_task
            and threading.current_thread() is self._running_in  # never raise in a bystander
        ):
            self.in_task = False  # interrupt once
            raise WorkerInterrupted()

    def held(self) -> list[Job]:
        """The jobs this worker has claimed and not finished or handed back."""
        with self.lock:
            jobs = list(self.prefetched)
            if self.current_job is not None:
                jobs.append(self.current_job)
        return jobs

    def held_tokens(self) -> list[uuid.UUID]:
        return list({job.fence_token for job in self.held() if job.fence_token is not None})

    def take_waiting_prefetched(self) -> list[Job]:
        """Prefetched jobs stuck behind a long-running job (called by the heartbeat thread)."""
        with self.lock:
            if (
                not self.prefetched
                or self.current_job is None
                or time.monotonic() - self.current_job_started < PREFETCH_PATIENCE
            ):
                return []
            jobs, self.prefetched = self.prefetched, []
        return jobs

    def give_back_prefetched(self, jobs: list[Job]) -> None:
        for job in jobs:
            job._dbq_confirmed = 0.0  # a release may have landed unseen: check before running
        with self.lock:
            self.prefetched[:0] = jobs

    @property
    def claimer(self) -> Claimer:
        if self._claimer is None:
            self._claimer = Claimer(
                self.using, self.queue_names, self.worker_id, self.lease_seconds
            )
        return self._claimer

    def run(self) -> None:
        """Work until shut down (or drained); installs SIGTERM/SIGINT handlers."""
        self._running_in = threading.current_thread()
        in_main_thread = self._running_in is threading.main_thread()
        if not can_enforce_timeouts():
            timed = sorted(
                name
                for name, definition in get_definitions().items()
                if definition.timeout or definition.step_timeouts
            )
            if timed:
                raise ImproperlyConfigured(
                    f"Jobs {', '.join(timed)} have step timeouts, which only a worker running "
                    "in the main thread can enforce: run Worker.run() there (manage.py worker "
                    "does)."
                )
        if in_main_thread:
            previous = {sig: signal.signal(sig, self.shutdown) for sig in SHUTDOWN_SIGNALS}
        waiter = None
        try:
            self._prepare_connection()
            waiter = self._make_waiter()
            self._heartbeat = Heartbeat(self, self.lease_seconds)
            self._maintenance = Maintenance(self, self.lease_seconds)
            self._heartbeat.start()
            self._maintenance.start()
            self._loop(waiter)
        except WorkerInterrupted:
            logger.warning("Stopped at once by a second signal")
        finally:
            try:
                self._release_prefetched()
            except WorkerInterrupted:
                pass  # a third signal: the lease lapses and the jobs are rescued
            for thread in (self._maintenance, self._heartbeat):
                if thread is not None:
                    thread.stop()
            for thread in (self._maintenance, self._heartbeat):
                if thread is not None and thread.is_alive():
                    thread.join(timeout=10)
            self._heartbeat = self._maintenance = None
            if waiter is not None:
                waiter.close()
            if in_main_thread:
                for sig, handler in previous.items():
                    signal.signal(sig, handler)
            logger.info("Worker %s stopped", self.worker_id)

    def _process_job(self) -> None:
        """Claim one job and run one step of it (the django-db-queue 3.x test entry point)."""
        self._running_in = threading.current_thread()
        jobs = self.claimer.claim(1)
        if jobs:
            with self.lock:
                self.current_job = jobs[0]
                self.current_job_started = time.monotonic()
            try:
                self._job_run(jobs[0]).run(one_step=True)
            finally:
                with self.lock:
                    self.current_job = None

    # -- the loop -------------------------------------------------------------

    def _job_run(self, job: Job) -> JobRun:
        return JobRun(
            job, self._persist, task_scope=TaskScope(self), lease_seconds=self.lease_seconds
        )

    def _make_waiter(self) -> backends.Poller:
        """The database's way to wait for work (LISTEN on PostgreSQL unless turned off)."""
        backend = backends.for_alias(self.using)
        return backend.waiter(self.stop_event, self.queue_names, listen=self.listen)

    def _prepare_connection(self) -> None:
        """The database's set-up of the worker's connection (SQLite: WAL)."""
        connection = connections[self.using]
        backends.for_connection(connection).prepare_worker_connection(connection)

    def _loop(self, waiter: backends.Poller) -> None:
        failures = 0
        nothing_to_rescue = False  # --drain: the last rescue found no lapsed job
        while not self.stopping:
            try:
                waiter.listening()  # LISTEN before looking, so no notification falls between
                if not self.prefetched:
                    claimed_at = time.monotonic()
                    jobs = self.claimer.claim(self._next_batch_size())
                    for job in jobs:
                        job._dbq_confirmed = claimed_at
                    self.cancel_flags_read_at = claimed_at
                    if jobs:
                        nothing_to_rescue = False
                        with self.lock:
                            self.prefetched.extend(jobs)
                failures = 0
            except DatabaseError as error:
                failures += 1
                self._reset_connection(error, failures)
                continue
            except Exception as error:  # a bug or a row that cannot be read: never exit
                failures += 1
                logger.exception("Claiming failed; retrying")
                self._reset_connection(error, failures)
                continue
            if not self.prefetched:
                if self.drain:
                    if nothing_to_rescue:
                        # A claim after a rescue that found nothing came back empty.
                        retry_in = self._next_retry_in() if self.wait_retries else None
                        if retry_in is None:
                            return
                        waiter.wait(min(retry_in, self.poll_interval))
                        nothing_to_rescue = False
                        continue
                    # Lost workers' jobs are runnable too: rescue them here rather than leave
                    # them to the maintenance thread, which may tick only after we returned.
                    # Then claim once more, also for jobs the maintenance thread just rescued.
                    try:
                        nothing_to_rescue = not rescue_lapsed_jobs(
                            self.using, keep=self.held_tokens
                        )
                    except DatabaseError as error:
                        failures += 1
                        self._reset_connection(error, failures)
                    continue
                # Notifications cut the wait short; the poll still finds jobs whose run_after came.
                waiter.wait(self.poll_interval)
                continue
            self._pace()
            job = self._start_next()
            if job is None:
                continue
            if not self._still_ours(job):
                with self.lock:
                    self.current_job = None
                continue
            try:
                self._read_cancel_requests(job)
                self._run(job)
            except Exception as error:  # never let one job's trouble stop the worker
                failures += 1
                logger.exception(
                    "Error while running job %s; it is rescued once its lease lapses", job.pk
                )
                self._reset_connection(error, failures)

    def _start_next(self) -> Job | None:
        """Take the next prefetched job and make it current (None when stopping)."""
        with self.lock:
            if self.stopping or not self.prefetched:
                return None
            job = self.prefetched.pop(0)
            self.current_job = job
            self.current_job_started = time.monotonic()
        return job

    def _still_ours(self, job: Job) -> bool:
        """Before starting a prefetched job, make sure its lease did not lapse meanwhile.

        Needed only when neither the claim nor a heartbeat confirmed the lease
        recently (this process was paused or starved): then one fenced write
        renews it, or tells that the job was rescued and must not run here.
        """
        if time.monotonic() - getattr(job, "_dbq_confirmed", 0.0) < self.lease_seconds / 2:
            return True

        def renew() -> bool:
            return job.fenced_update(
                lease_expires_at=leases.deadline(self.lease_seconds, self.using)
            )

        try:
            if self._persist(renew):
                job._dbq_confirmed = time.monotonic()
                return True
        except DatabaseError as error:
            logger.warning("Could not check the lease of job %s: %s", job.pk, error)
            return False
        logger.warning("Lost the claim on job %s before it started; skipping it", job.pk)
        return False

    def _next_retry_in(self) -> float | None:
        """Seconds until the first job of these queues waiting for a retry may run (or None).

        A retry waits ``READY`` with a ``run_after``; jobs created with a ``run_after``
        (``NEW``) are not waited for: they may be meant for next week.
        """
        try:
            first = (
                Job.objects.using(self.using)
                .filter(queue_name__in=self.queue_names, state="READY", run_after__isnull=False)
                .order_by("run_after")
                .values_list("run_after", flat=True)
                .first()
            )
        except DatabaseError as error:
            self._reset_connection(error, 1)
            return 0.0
        if first is None:
            return None
        return max((first - timezone.now()).total_seconds(), 0.0)

    def _read_cancel_requests(self, job: Job) -> None:
        """Before starting ``job``, read the cancel flags of the jobs waiting here, if stale."""
        now = time.monotonic()
        if now - self.cancel_flags_read_at < CANCEL_CHECK_INTERVAL:
            return
        with self.lock:
            waiting = {held.pk: held for held in [job, *self.prefetched]}
        requested = Job.objects.using(self.using).filter(pk__in=waiting, cancel_requested=True)
        for pk in requested.values_list("pk", flat=True):
            waiting[pk].cancel_requested = True
        self.cancel_flags_read_at = now

    def _next_batch_size(self) -> int:
        if self.seconds_per_job is None:
            return 1
        size = max(1, min(self.batch_size, int(BATCH_WINDOW / max(self.seconds_per_job, 1e-6))))
        # Never claim jobs that --max-jobs will not let this worker run.
        return min(size, self.max_jobs - self.jobs_run) if self.max_jobs else size

    def _pace(self) -> None:
        if self.rate_limit_in_seconds:
            wait = self.last_job_started + self.rate_limit_in_seconds - time.monotonic()
            if wait > 0:
                self.stop_event.wait(wait)
        self.last_job_started = time.monotonic()

    def _run(self, job: Job) -> None:
        started = time.monotonic()
        try:
            self._job_run(job).run(should_stop=lambda: self.stopping)
        finally:
            with self.lock:
                self.current_job = None
            self.jobs_run += 1
            if self.max_jobs and self.jobs_run >= self.max_jobs:
                logger.info("Ran %s jobs (--max-jobs); stopping", self.jobs_run)
                self.stopping = True
        took = time.monotonic() - started
        self.seconds_per_job = (
            took if self.seconds_per_job is None else 0.8 * self.seconds_per_job + 0.2 * took
        )
        connection = connections[self.using]
        if connection.errors_occurred:
            connection.errors_occurred = False
            if not connection.in_atomic_block and not connection.is_usable():
                connection.close()  # the task's own queries broke it; reconnect for the next job

    def _release_prefetched(self) -> None:
        """Hand back claimed jobs that never started, so a stop strands nothing."""
        with self.lock:
            jobs, self.prefetched = self.prefetched, []
        if jobs:
            logger.info("Handing back %s claimed job(s) that had not started", len(jobs))
        for job in jobs:
            try:
                self._job_run(job).release()
            except (JobLost, DatabaseError):
                logger.warning("Could not release job %s; it will be rescued", job.pk)

    # -- database outages -----------------------------------------------------

    def _reset_connection(self, error: Exception, failures: int, *, sleep=None) -> None:
        reset_connection(self.using, error, failures, sleep or self.stop_event.wait)

    def _persist(self, write: Callable[[], bool]) -> bool:
        """Run a fenced write, retrying through outages until it lands or the lease is surely gone.

        A first signal does not cut this short (a stopping worker still saves its
        checkpoint); a second one leaves after one more try.
        """
        failures = 0
        give_up_at = time.monotonic() + self.lease_seconds * 2
        while True:
            try:
                return write()
            except TRANSIENT_ERRORS as error:
                failures += 1
                if time.monotonic() > give_up_at or (self.abort.is_set() and failures > 1):
                    logger.error("Giving up a write after %s tries: %s", failures, error)
                    return False
                self._reset_connection(error, failures, sleep=self.abort.wait)
