"""Step timeouts in the threads mode: a watchdog ends a step that ran over, for the queue.

``SIGALRM`` reaches only the main thread, and Python cannot safely interrupt another
thread, so a slot's step runs on past its timeout. The watchdog (run by the
maintenance thread) sees it, and writes the outcome the main thread's timer would
have: the step failed its attempt with a :class:`~django_dbq.exceptions.StepTimeout`,
retried or ``FAILED`` as the definition says (the same record, through the same
:class:`~.outcomes.Outcomes`). That write is fenced on the claim and takes the claim
away: when the stuck step returns at last, its writes change nothing.

The slot stays stuck in the step meanwhile. When more than half of the slots are
stuck, the pool stops taking jobs, lets the others finish, and exits non-zero so
that its supervisor starts a fresh process.
"""

from __future__ import annotations

import copy
import logging
import time
import uuid
from collections.abc import Callable, Collection, Sequence
from typing import TYPE_CHECKING

from ..definitions import get_definition
from ..exceptions import JobLost
from ..timeouts import StepTimer
from .maintenance import Maintenance
from .outages import PersistentWrites
from .outcomes import Outcomes

if TYPE_CHECKING:
    from .slots import Slot

logger = logging.getLogger(__name__)


class Watchdog:
    """Ends the jobs of slots whose step ran past its timeout; counts the slots stuck so."""

    def __init__(
        self,
        slots: Sequence[Slot],
        persist: PersistentWrites,
        on_pile_up: Callable[[int], None],
    ) -> None:
        self.slots = slots
        self.persist = persist
        self.on_pile_up = on_pile_up  # called with the number stuck, once more than half are
        self.ended: dict[int, StepTimer] = {}  # slot index -> the timer of the step ended
        self.piled_up = False

    def check(self) -> None:
        """End every job whose step ran over; then see whether stuck slots piled up."""
        now = time.monotonic()
        for slot in self.slots:
            timer = slot.watch.timer
            if timer is None or self.ended.get(slot.index) is timer or now < timer.deadline():
                continue
            job = slot.held.current
            if slot.watch.timer is not timer or job is None:
                continue  # the step ended meanwhile (then ``job`` may be the next one)
            self.end(slot, job, timer)
        stuck = self.stuck()
        if not self.piled_up and stuck * 2 > len(self.slots):
            self.piled_up = True
            self.on_pile_up(stuck)

    def end(self, slot: Slot, job, timer: StepTimer) -> None:
        """Write ``job``'s timeout, as the main thread's timer would have; stop holding it."""
        self.ended[slot.index] = timer
        slot.held.finish(job)  # its lease is not renewed any more: the claim is let go below
        logger.error(
            "Job %s: step %s ran past its timeout of %s s in slot %s; ending it (the thread "
            "stays in the step; its later writes change nothing)",
            job.pk,
            timer.step,
            timer.seconds,
            slot.index,
        )
        try:
            definition = get_definition(job.name)
        except Exception:
            definition = None  # no definition to retry by: the job fails
        try:
            # A copy: the stuck thread's instance is left alone, and keeps the old claim.
            Outcomes(copy.copy(job), self.persist).fail(timer.step, timer.error(), "", definition)
        except JobLost:
            logger.info("Job %s had ended or was handed back already", job.pk)
        # Jobs claimed ahead would wait behind the stuck step: other slots and workers run them.
        slot.intake.release_unstarted()

    def stuck(self) -> int:
        """How many slots are still in a step that was ended for them."""
        return sum(
            1
            for slot in self.slots
            if slot.index in self.ended and slot.watch.timer is self.ended[slot.index]
        )

    def is_stuck(self, slot: Slot) -> bool:
        timer = self.ended.get(slot.index)
        return timer is not None and slot.watch.timer is timer

    def seconds_until_due(self) -> float | None:
        """Seconds until the next running step runs over (None: no timed step runs)."""
        deadlines = [
            timer.deadline()
            for slot in self.slots
            if (timer := slot.watch.timer) is not None and self.ended.get(slot.index) is not timer
        ]
        return min(deadlines) - time.monotonic() if deadlines else None


class WatchedMaintenance(Maintenance):
    """A threaded worker's maintenance thread: the watchdog's checks, then rescues and schedules.

    The watchdog runs here, not in the heartbeat, because ending a job may run user code
    (the failure hook, signal receivers), and nothing may hold up the heartbeat.
    """

    def __init__(
        self,
        using: str,
        lease_seconds: float,
        held_here: Callable[[], Collection[uuid.UUID]],
        watchdog: Watchdog,
    ) -> None:
        super().__init__(using, lease_seconds, held_here=held_here)
        self.watchdog = watchdog

    def tick(self) -> None:
        self.watchdog.check()
        super().tick()

    def next_delay(self, delay: float) -> float:
        # Wake up when a running step runs over (a step started later is seen a tick late).
        delay = super().next_delay(delay)
        due = self.watchdog.seconds_until_due()
        return delay if due is None else min(delay, max(due, 0.01))
