"""The states a job can be in, and the groups the queue reasons with.

One vocabulary for the model, the engine, the admin and the Tasks backend: a state
is never spelled as a bare string elsewhere.
"""

from __future__ import annotations

from django.db import models
from django.db.models.lookups import In


class State(models.TextChoices):
    NEW = "NEW", "New"
    READY = "READY", "Ready"
    PROCESSING = "PROCESSING", "Processing"
    STOPPING = "STOPPING", "Stopping"
    FAILED = "FAILED", "Failed"
    COMPLETE = "COMPLETE", "Complete"
    CANCELLED = "CANCELLED", "Cancelled"
    # Waiting for the jobs it depends on (django_dbq.workflows); never claimed.
    WAITING = "WAITING", "Waiting"


# Waiting for a worker (``run_after`` may still hold it back).
RUNNABLE = (State.NEW, State.READY)
# Held by a worker, under a lease.
ACTIVE = (State.PROCESSING, State.STOPPING)
FINISHED = (State.COMPLETE, State.FAILED, State.CANCELLED)
# The states in which a job holds its unique key (see migration 0009).
HOLDING_KEY = (*RUNNABLE, *ACTIVE)
# Not finished: waiting for its dependencies, for a worker, or held by one.
UNFINISHED = (State.WAITING, *RUNNABLE, *ACTIVE)
# What Job.retry() (and the admin's and command's retry) accepts.
RETRYABLE = (State.FAILED, State.CANCELLED)


class StatesIn(In):
    """``state__in``, with the states written into the SQL as literals, not parameters.

    SQLite uses a partial index (runnable, leased, keyed... jobs) only for a condition
    that matches the index's own literally: ``state IN (?, ?)`` with bound parameters
    never does, so a grouped count of the runnable jobs read the whole table (237 ms
    against 1 ms on a million rows). Only values of the vocabulary are written in, in
    the caller's order (the groups above, in the order the indexes spell them).
    """

    def process_rhs(self, compiler, connection):
        if self.rhs_is_direct_value():
            values = list(dict.fromkeys(self.rhs))
            if values and all(isinstance(value, str) and value in State.values for value in values):
                return "(" + ", ".join(f"'{State(value).value}'" for value in values) + ")", []
        return super().process_rhs(compiler, connection)
