"""``--drain``: work until no runnable job is left, then stop."""

from __future__ import annotations

from ..backends import Poller
from .intake import Intake


class Drain:
    """Decides, each time a claim came back empty, whether a draining worker is done.

    Lost workers' jobs are runnable too: the first empty claim is followed by a
    rescue here (the maintenance thread may tick only after the worker returned),
    then by one more claim, which also finds jobs the maintenance thread rescued.
    Only a claim after a rescue that found nothing ends the drain; with
    ``wait_retries``, not while a retry of a failed or snoozed job is due later.
    """

    def __init__(self, intake: Intake, *, wait_retries: bool, poll: float) -> None:
        self.intake = intake
        self.jobs = intake.jobs  # the job table on the worker's database
        self.queue_names = intake.queue_names
        self.held = intake.held
        self.pauses = intake.pauses
        self.wait_retries = wait_retries
        self.poll = poll
        self.nothing_to_rescue = False

    def claimed(self) -> None:
        self.nothing_to_rescue = False

    def done(self, waiter: Poller) -> bool:
        """After an empty claim: True when the worker may stop (raises ``DatabaseError``)."""
        if self.intake.rate_wait() is not None:
            # A rate held a queue back, not a lack of jobs: wait for its next start.
            waiter.wait(self.intake.idle_wait(self.poll))
            return False
        if not self.nothing_to_rescue:
            self.nothing_to_rescue = not self.jobs.rescue_lapsed(held_by_caller=self.held.tokens)
            return False
        if not self.wait_retries:
            return True
        # A retry waits READY with a run_after; a NEW job's run_after may be next week.
        # Paused queues' retries wait for a resume: not for this drain (the intake
        # read the pause state after the empty claim, so this costs no query).
        serving = [name for name in self.queue_names if not self.pauses.is_paused(name)]
        if not serving:
            return True
        retry_in = self.jobs.seconds_until_next_retry(serving)
        if retry_in is None:
            return True
        waiter.wait(min(retry_in, self.poll))
        self.nothing_to_rescue = False
        return False
