"""The jobs one worker holds: the one running, and those claimed ahead of it."""

from __future__ import annotations

import threading
import time
import uuid
from typing import Any


class HeldJobs:
    """The running job and the prefetched ones, shared by the loop and the heartbeat.

    It also knows when each prefetched job's claim was last known good (claimed, or
    renewed by a heartbeat that renewed every lease): one started within half a
    lease of that needs no extra check that it is still this worker's.
    """

    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.current: Any = None
        self.current_started = 0.0
        self.prefetched: list[Any] = []
        self._confirmed: dict[Any, float] = {}  # pk -> time.monotonic() of the last good sign

    def all(self) -> list[Any]:
        """Every job held: prefetched ones first, the running one last."""
        with self.lock:
            jobs = list(self.prefetched)
            if self.current is not None:
                jobs.append(self.current)
        return jobs

    def tokens(self) -> list[uuid.UUID]:
        """The claim tokens of the jobs held (a rescue must leave those claims alone)."""
        return list({job.fence_token for job in self.all() if job.fence_token is not None})

    def add(self, jobs: list[Any], claimed_at: float) -> None:
        with self.lock:
            self.prefetched.extend(jobs)
            for job in jobs:
                self._confirmed[job.pk] = claimed_at

    def confirm(self, jobs: list[Any], at: float) -> None:
        """Every lease of ``jobs`` was renewed (or checked) at ``at``."""
        with self.lock:
            for job in jobs:
                if job.pk in self._confirmed:
                    self._confirmed[job.pk] = at

    def confirmed_at(self, job: Any) -> float:
        """When ``job``'s claim was last known good (0.0: never, or unknown)."""
        with self.lock:
            return self._confirmed.get(job.pk, 0.0)

    def start(self, job: Any) -> None:
        with self.lock:
            self.current = job
            self.current_started = time.monotonic()
            self._confirmed.setdefault(job.pk, 0.0)

    def start_next(self) -> Any:
        """Make the first prefetched job the running one and return it (None if none)."""
        with self.lock:
            if not self.prefetched:
                return None
            job = self.prefetched.pop(0)
            self.current = job
            self.current_started = time.monotonic()
        return job

    def finish_current(self) -> None:
        with self.lock:
            if self.current is not None:
                self._confirmed.pop(self.current.pk, None)
            self.current = None

    def finish(self, job: Any) -> bool:
        """Stop holding ``job`` if it is still the running one (another thread ended it)."""
        with self.lock:
            if self.current is not job:
                return False
            self._confirmed.pop(job.pk, None)
            self.current = None
        return True

    def take_prefetched(self, *, waiting_longer_than: float | None = None) -> list[Any]:
        """Take the prefetched jobs back (to release them).

        With ``waiting_longer_than``, only if the running job has run that many seconds
        (they would wait behind it while other workers could run them).
        """
        with self.lock:
            if waiting_longer_than is not None and (
                self.current is None
                or time.monotonic() - self.current_started < waiting_longer_than
            ):
                return []
            jobs, self.prefetched = self.prefetched, []
            for job in jobs:
                self._confirmed.pop(job.pk, None)
        return jobs

    def give_back(self, jobs: list[Any]) -> None:
        """Hold ``jobs`` again, first in line; their claims must be checked before they run."""
        with self.lock:
            self.prefetched[:0] = jobs
            for job in jobs:
                self._confirmed[job.pk] = 0.0  # a release may have landed unseen
