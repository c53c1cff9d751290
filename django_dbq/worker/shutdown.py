"""Shutting a worker down: which signals ask for it, and what each request changes.

The first request lets the running step finish, then the worker hands the rest of
its jobs back and stops; a second one stops it at once, interrupting the task if
it is running user code (and only then: never in the middle of the queue's own
writes).
"""

from __future__ import annotations

import signal
import threading
from collections.abc import Callable
from typing import Any

from ..exceptions import WorkerInterrupted

# The signals that stop a worker gracefully: django-db-queue 3.x's set (SIGQUIT too,
# where the platform has it), so process managers configured for it keep working.
SHUTDOWN_SIGNALS = tuple(
    getattr(signal, name) for name in ("SIGTERM", "SIGINT", "SIGQUIT") if hasattr(signal, name)
)


class Shutdown:
    """A worker's shutdown state, shared by its threads."""

    def __init__(self) -> None:
        self.requests = 0
        self.stopping = False  # no new job starts (set by a request, or by --max-jobs)
        self.graceful = threading.Event()  # first request: finish the step, then stop
        self.abort = threading.Event()  # second request: stop at once
        self.in_task = False  # user code is running in ``task_thread``
        self.task_thread: threading.Thread | None = None
        # Events of the worker's threads that a request must wake up.
        self.wakes: list[threading.Event] = []

    def request(self) -> int:
        """Count one more request to stop and wake every waiting thread; the count so far.

        Safe in a signal handler: it sets flags and events, and writes nothing.
        """
        self.requests += 1
        self.stopping = True
        events = [self.graceful, *self.wakes]
        if self.requests > 1:
            events.append(self.abort)
        set_events(events)
        return self.requests

    def interrupt_task(self) -> None:
        """On a second request, raise :class:`WorkerInterrupted` in the running task, once.

        Only in the thread running the task (a signal handler runs in the main thread,
        which may be a bystander when the worker runs in another).
        """
        if self.requests > 1 and self.in_task and threading.current_thread() is self.task_thread:
            self.in_task = False
            raise WorkerInterrupted()

    def task_scope(self) -> TaskScope:
        return TaskScope(self)


class TaskScope:
    """Marks the span where user code runs: only there may a second request interrupt."""

    __slots__ = ("shutdown",)

    def __init__(self, shutdown: Shutdown):
        self.shutdown = shutdown

    def __enter__(self) -> None:
        if self.shutdown.abort.is_set():
            raise WorkerInterrupted()
        self.shutdown.in_task = True

    def __exit__(self, *exc_info: Any) -> None:
        self.shutdown.in_task = False


class SignalHandlers:
    """``handler`` installed for the shutdown signals (in the main thread only), until restored."""

    def __init__(self, handler: Callable[..., Any]) -> None:
        self.previous: dict[int, Any] = {}
        if threading.current_thread() is threading.main_thread():
            self.previous = {sig: signal.signal(sig, handler) for sig in SHUTDOWN_SIGNALS}

    def restore(self) -> None:
        for sig, handler in self.previous.items():
            signal.signal(sig, handler)
        self.previous = {}


def set_events(events: list[threading.Event]) -> None:
    """Set ``events``; from the main thread, via a helper thread.

    A signal handler runs in the main thread, which may be inside ``Event.wait``
    holding that event's (non-reentrant) lock: setting it there would deadlock.
    """
    if threading.current_thread() is not threading.main_thread():
        for event in events:
            event.set()
        return
    threading.Thread(target=set_events, args=(events,), name="django_dbq-signal").start()
