"""Every change of a job's state, each one fenced and each one sending its signal.

Two kinds of writer change a job. People (the API, the commands, the admin) cancel
and retry (:mod:`.requests`). A worker holding a claim writes everything else
(:mod:`.holder`), each write fenced on the claim's token (:func:`fenced_update`),
and takes lost workers' jobs back (:mod:`.rescue`), fenced on the lapsed claim it
saw. The claim itself is the database engine's statement (``django_dbq.backends``).

The engine works on the instances and querysets it is handed and never names the
model, so ``Job``'s own methods are one-line calls into it. A signal is sent once
its change is written (:func:`django_dbq.signals.send`).
"""

from .claim import Claimer
from .holder import (
    cancel_running,
    checkpoint,
    fail,
    hand_back,
    mark_stopping,
    release,
    renew_lease,
    renew_leases,
    retry_later,
    run_failure_hook,
    save_hook_workspace,
    save_workspace,
)
from .requests import cancel, retry
from .rescue import rescue_lapsed, rescue_worker
from .rows import (
    RELEASED,
    Persist,
    check_workspace,
    duplicate_job_raised,
    fenced_update,
    finished,
    once,
)

__all__ = [
    "Claimer",
    "RELEASED",
    "Persist",
    "cancel",
    "cancel_running",
    "check_workspace",
    "checkpoint",
    "duplicate_job_raised",
    "fail",
    "fenced_update",
    "hand_back",
    "finished",
    "mark_stopping",
    "once",
    "release",
    "renew_lease",
    "renew_leases",
    "rescue_lapsed",
    "rescue_worker",
    "retry",
    "retry_later",
    "run_failure_hook",
    "save_hook_workspace",
    "save_workspace",
]
