"""``worker --concurrency N --mode processes``: a supervisor that forks N workers and keeps them.

The command sets Django up once (settings, checks, app registry); the supervisor then
closes every database connection and forks N children, each running an ordinary
:class:`.loop.Worker` in its main thread (its own connections, leases, heartbeat and
step timeouts), named by a worker id the supervisor chose. The supervisor itself
holds no connection, except for a moment to rescue a dead child's jobs.

- A child that dies (killed, or a non-zero exit) has its jobs rescued at once by
  that id (:func:`django_dbq.engine.rescue_worker`), without waiting for their
  leases, and a replacement is started after a backoff that grows while children
  keep dying young.
- The first SIGTERM/SIGINT/SIGQUIT is passed on to every child as a graceful stop,
  the second as a stop at once; the supervisor exits once its children have.
- With ``--drain`` or ``--max-jobs`` (each child counts its own jobs) a child that
  exits 0 is done and not replaced; the supervisor exits when all are.
"""

from __future__ import annotations

import logging
import os
import select
import signal
import socket
import sys
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass

from django.db import connections

from .. import engine
from ..models import Job
from .child import STOP_GRACEFULLY, STOP_NOW, WorkerLike, run_child
from .outages import backoff_delay
from .shutdown import SHUTDOWN_SIGNALS

logger = logging.getLogger(__name__)

MAX_RESTART_DELAY = 30.0
# A child that ran this long was healthy: its slot's backoff starts again from the shortest.
HEALTHY_SECONDS = 60.0
# Signals the supervisor handles.
HANDLED = (*SHUTDOWN_SIGNALS, signal.SIGCHLD)
# Blocked while it forks, until the child has its own handlers: a child must neither run the
# supervisor's handler nor die of the default action of a stop request sent early.
BLOCKED_ACROSS_FORK = (*HANDLED, STOP_GRACEFULLY, STOP_NOW)


@dataclass
class Slot:
    """One of the N places a child runs in, and its history."""

    number: int
    generation: int = -1
    pid: int | None = None
    worker_id: str = ""
    started: float = 0.0
    failures: int = 0
    start_at: float | None = 0.0  # when to start its next child; None: not again
    status: int = 0  # the exit status of its last child


class Supervisor:
    """Runs ``concurrency`` children, each ``make_worker(worker_id).run()``; see the module."""

    def __init__(
        self,
        concurrency: int,
        make_worker: Callable[[str], WorkerLike],
        *,
        replace_clean_exits: bool = True,
        using: str = "default",
    ):
        if isinstance(concurrency, bool) or not isinstance(concurrency, int) or concurrency < 1:
            raise ValueError("concurrency must be a whole number of at least 1.")
        self.make_worker = make_worker
        self.replace_clean_exits = replace_clean_exits
        self.using = using
        self.slots = [Slot(number) for number in range(concurrency)]
        # Children are named <host>:<pid>:<run>/<slot>.<generation>; the run tells this
        # supervisor from an earlier one that had the same pid (a restarted container).
        self.name = f"{socket.gethostname()}:{os.getpid()}:{uuid.uuid4().hex[:6]}"
        self.requests = 0  # stop requests received (signal handler)
        self.passed_on = 0  # stop requests passed on to the children
        self.rescues: list[str] = []  # worker ids whose jobs are still to rescue
        self.rescue_failures = 0
        self.rescue_at = 0.0
        self._wake_fds: tuple[int, int] | None = None

    def run(self) -> int:
        """Start the children and keep them until told to stop (or done); the exit status.

        0 when the last child of every slot exited 0. Call it in the main thread.
        """
        connections.close_all()  # a connection shared with a child would be two clients' socket
        wake_read, wake_write = self._wake_fds = os.pipe()
        for fd in self._wake_fds:
            os.set_blocking(fd, False)
        previous_fd = signal.set_wakeup_fd(wake_write)
        previous = {sig: signal.signal(sig, self._on_signal) for sig in HANDLED}
        try:
            while True:
                self._reap()
                self._pass_on_stop_requests()
                self._rescue_due()
                self._start_due()
                if not self._running():
                    break
                self._sleep(wake_read)
            self._rescue_due(final=True)
        except BaseException:  # a bug here: the children stop too, rather than run unwatched
            self.requests = max(self.requests, 1)
            self._pass_on_stop_requests()
            raise
        finally:
            for sig, handler in previous.items():
                signal.signal(sig, handler)
            signal.set_wakeup_fd(previous_fd)
            for fd in self._wake_fds:
                os.close(fd)
            self._wake_fds = None
        failed = [slot.number for slot in self.slots if slot.status != 0]
        if failed:
            logger.error("Worker processes of slot(s) %s did not exit cleanly", failed)
        return 1 if failed else 0

    # -- the loop's steps ---------------------------------------------------------------

    def _on_signal(self, signum: int, frame: object) -> None:
        # Only counted here: the loop (woken by the wakeup fd) passes it on and logs.
        if signum != signal.SIGCHLD:
            self.requests += 1

    def _running(self) -> bool:
        live = any(slot.pid is not None for slot in self.slots)
        return live or (not self.requests and any(s.start_at is not None for s in self.slots))

    def _reap(self) -> None:
        for slot in self.slots:
            if slot.pid is None:
                continue
            try:
                pid, status = os.waitpid(slot.pid, os.WNOHANG)
            except ChildProcessError:  # reaped by someone else: its status is lost
                pid, status = slot.pid, 255 << 8
            if pid:
                self._exited(slot, os.waitstatus_to_exitcode(status))

    def _exited(self, slot: Slot, code: int) -> None:
        now = time.monotonic()
        lived = now - slot.started
        if code < 0:
            logger.error(
                "Worker process %s (%s) was killed by signal %s after %.1f s",
                slot.pid,
                slot.worker_id,
                -code,
                lived,
            )
        elif code:
            logger.error(
                "Worker process %s (%s) exited with status %s", slot.pid, slot.worker_id, code
            )
        else:
            logger.info("Worker process %s (%s) exited", slot.pid, slot.worker_id)
        slot.pid, slot.status = None, code
        # Whatever it still held is orphaned now: nobody else uses its id.
        self.rescues.append(slot.worker_id)
        self.rescue_at = 0.0
        if self.requests or (code == 0 and not self.replace_clean_exits):
            slot.start_at = None
            return
        slot.failures = 1 if lived >= HEALTHY_SECONDS else slot.failures + 1
        delay = backoff_delay(slot.failures, cap=MAX_RESTART_DELAY)
        slot.start_at = now + delay
        logger.info("Starting a replacement for slot %s in %.1f s", slot.number, delay)

    def _pass_on_stop_requests(self) -> None:
        while self.passed_on < self.requests:
            self.passed_on += 1
            first = self.passed_on == 1
            logger.info(
                "Stopping %s: the worker processes %s",
                self.name,
                "finish their running steps" if first else "stop at once",
            )
            for slot in self.slots:
                if slot.pid is not None:
                    try:
                        os.kill(slot.pid, STOP_GRACEFULLY if first else STOP_NOW)
                    except ProcessLookupError:
                        pass  # exited; reaped on the next turn

    def _rescue_due(self, final: bool = False) -> None:
        if not self.rescues or (not final and time.monotonic() < self.rescue_at):
            return
        jobs = Job.objects.using(self.using)
        try:
            while self.rescues:
                rescued = engine.rescue_worker(jobs, self.rescues[0])
                if rescued:
                    logger.warning("Rescued %s job(s) of worker %s", rescued, self.rescues[0])
                self.rescues.pop(0)
            self.rescue_failures = 0
        except Exception as error:  # the database is away: try again later, or leave it to leases
            self.rescue_failures += 1
            delay = backoff_delay(self.rescue_failures, cap=MAX_RESTART_DELAY)
            self.rescue_at = time.monotonic() + delay
            logger.warning(
                "Could not rescue the jobs of worker %s (%s: %s); %s",
                self.rescues[0],
                type(error).__name__,
                error,
                "their leases will lapse" if final else f"retrying in {delay:.1f} s",
            )
        finally:
            connections.close_all()  # hold no connection while waiting, nor across a fork

    def _start_due(self) -> None:
        if self.requests:
            return
        now = time.monotonic()
        for slot in self.slots:
            if slot.pid is None and slot.start_at is not None and slot.start_at <= now:
                self._start(slot)

    def _start(self, slot: Slot) -> None:
        slot.generation += 1
        slot.worker_id = f"{self.name}/{slot.number}.{slot.generation}"[-100:]
        parent = os.getpid()
        for stream in (sys.stdout, sys.stderr):
            stream.flush()  # else the child would write the parent's pending output again
        mask = signal.pthread_sigmask(signal.SIG_BLOCK, BLOCKED_ACROSS_FORK)
        try:
            pid = os.fork()
            if pid == 0:  # the child: never returns
                run_child(self.make_worker, slot.worker_id, parent, self._wake_fds, mask)
            slot.pid, slot.started, slot.start_at = pid, time.monotonic(), None
        except OSError as error:  # out of processes or memory: try again later
            slot.failures += 1
            slot.start_at = time.monotonic() + backoff_delay(slot.failures, MAX_RESTART_DELAY)
            logger.error("Could not start a worker process for slot %s: %s", slot.number, error)
            return
        finally:
            signal.pthread_sigmask(signal.SIG_SETMASK, mask)
        logger.info("Started worker process %s as worker %s", pid, slot.worker_id)

    def _sleep(self, wake_read: int) -> None:
        """Wait for a signal (a child's exit, a stop request) or the next due start or rescue."""
        due = [s.start_at for s in self.slots if s.pid is None and s.start_at is not None]
        if self.requests:
            due = []
        if self.rescues:
            due.append(self.rescue_at)
        timeout = max(0.0, min(due) - time.monotonic()) if due else None
        if self.passed_on < self.requests:
            timeout = 0.0
        select.select([wake_read], [], [], timeout)
        try:
            while os.read(wake_read, 512):
                pass
        except BlockingIOError:
            pass
