"""Shutdown signals: where they may interrupt, and how a handler wakes the worker's threads."""

from __future__ import annotations

import signal
import threading
from typing import Any

from .exceptions import WorkerInterrupted

# The signals that stop a worker gracefully: django-db-queue 3.x's set (SIGQUIT too,
# where the platform has it), so process managers configured for it keep working.
SHUTDOWN_SIGNALS = tuple(
    getattr(signal, name) for name in ("SIGTERM", "SIGINT", "SIGQUIT") if hasattr(signal, name)
)


class TaskScope:
    """Marks the span where user code runs: only there may a second signal interrupt."""

    __slots__ = ("worker",)

    def __init__(self, worker):
        self.worker = worker

    def __enter__(self) -> None:
        if self.worker.abort.is_set():
            raise WorkerInterrupted()
        self.worker.in_task = True

    def __exit__(self, *exc_info: Any) -> None:
        self.worker.in_task = False


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
