"""A supervisor's child process (:mod:`.supervisor`): one worker, from the fork to ``os._exit``.

The supervisor passes stop requests on with signals of its own rather than the
operator's: Ctrl-C reaches the whole process group, and Heroku, systemd and
``docker stop`` with an init signal every process, so a child may get the
operator's signal directly as well. Counted twice, one SIGTERM would stop the
running steps at once. So the children take the operator's signals as any worker
does (the first: finish the step; the second: stop at once), and the supervisor's
own two only bring a child up to that many requests, never past it.
"""

from __future__ import annotations

import logging
import os
import signal
import sys
import threading
import time
from collections.abc import Callable
from typing import Any, Protocol

from django.db import connections

from .shutdown import SHUTDOWN_SIGNALS

logger = logging.getLogger(__name__)

STOP_GRACEFULLY = signal.SIGUSR1  # the supervisor's first stop request
STOP_NOW = signal.SIGUSR2  # its second
PARENT_CHECK_SECONDS = 1.0


class WorkerLike(Protocol):
    """What a child runs: :class:`.loop.Worker`'s interface."""

    worker_id: str
    shutdown_state: Any  # its ``requests``: how many stop requests it has had

    def run(self) -> None: ...

    def shutdown(self, signum: int | None = None, frame: Any = None) -> None: ...


def run_child(
    make_worker: Callable[[str], WorkerLike],
    worker_id: str,
    parent: int,
    wake_fds: tuple[int, int] | None,
    mask: Any,
) -> None:
    """Run one worker in a freshly forked child and exit the process; never returns.

    ``mask`` is the signal mask to restore once the child's handlers are in place
    (the supervisor blocks its signals across the fork).
    """
    code = 1
    try:
        signal.set_wakeup_fd(-1)
        for fd in wake_fds or ():
            os.close(fd)
        signal.signal(signal.SIGCHLD, signal.SIG_DFL)
        worker = make_worker(worker_id)
        requests = StopRequests(worker)
        for sig in SHUTDOWN_SIGNALS:  # until run() installs the same
            signal.signal(sig, worker.shutdown)
        signal.signal(STOP_GRACEFULLY, requests.graceful)
        signal.signal(STOP_NOW, requests.now)
        watch_parent(parent)
        signal.pthread_sigmask(signal.SIG_SETMASK, mask)
        worker.run()
        code = 0
    except SystemExit as exit:
        code = exit.code if isinstance(exit.code, int) else 1
    except BaseException:
        logger.exception("Worker process %s (%s) failed", os.getpid(), worker_id)
    finally:
        try:
            connections.close_all()
            for stream in (sys.stdout, sys.stderr):
                stream.flush()
        finally:
            os._exit(code)  # never back into the supervisor's code, nor its atexit hooks


class StopRequests:
    """The supervisor's stop requests, brought to a worker without counting one twice."""

    def __init__(self, worker: WorkerLike):
        self.worker = worker

    def _requests(self) -> int:
        return self.worker.shutdown_state.requests

    def graceful(self, signum: int, frame: Any) -> None:
        if self._requests() < 1:
            self.worker.shutdown(signum, frame)

    def now(self, signum: int, frame: Any) -> None:
        self.graceful(signum, frame)
        if self._requests() < 2:
            self.worker.shutdown(signum, frame)  # may raise into the running task, as meant


def watch_parent(parent: int) -> None:
    """Stop this child gracefully if its supervisor disappears (killed with SIGKILL, say)."""

    def watch() -> None:
        while True:
            time.sleep(PARENT_CHECK_SECONDS)
            if os.getppid() != parent:
                logger.warning("The supervisor (process %s) is gone; stopping", parent)
                os.kill(os.getpid(), STOP_GRACEFULLY)
                return

    threading.Thread(target=watch, name="django_dbq-parent-watch", daemon=True).start()
