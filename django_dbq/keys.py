"""Concurrency keys: at most N running jobs with the same key, over every worker.

A job created with a ``concurrency_key`` (say ``"account:42"``) runs only while fewer
than its ``concurrency_limit`` jobs with that key are held by workers. The limit is
set at creation: given there, else the definition's ``concurrency_per_key``, else 1.
Keys are shared by every job name and queue: jobs of different kinds that must not
overlap for one account give the same key.

Each key that was ever claimed has a row here. A claim of a keyed job locks its key's
row, counts the key's running jobs and claims only with room left (see
:mod:`django_dbq.backends.keyed`), so no two claims can take the same free slot.
``delete_old_jobs`` removes the rows of keys no waiting or running job holds.
"""

from __future__ import annotations

from typing import Any

from django.db import models

from .states import HOLDING_KEY

# Job.concurrency_key's column and the key rows' hold up to this many characters.
KEY_MAX_LENGTH = 200


class ConcurrencyKey(models.Model):
    """The row a keyed job's claims lock (one per key), so they count one at a time."""

    # Binary collation on MariaDB/MySQL (migration 0013): "Account:1" is not "account:1".
    key = models.CharField(max_length=KEY_MAX_LENGTH, primary_key=True)

    class Meta:
        app_label = "django_dbq"

    def __str__(self) -> str:
        return self.key


def prune_rows(jobs: models.QuerySet) -> int:
    """Delete the rows of keys that none of ``jobs`` holds (waiting or running); how many.

    Harmless under a claim: a key's row is only something to lock, the count of its
    running jobs is read from the job table, and a claim makes a missing row again.
    """
    holding = jobs.filter(state__in=HOLDING_KEY, concurrency_key__isnull=False)
    unheld = ConcurrencyKey.objects.using(jobs.db).exclude(
        key__in=holding.values("concurrency_key")
    )
    return unheld.delete()[0]


def check_key(job: Any, default_limit: int) -> None:
    """Refuse a malformed key or limit (``ValueError``); fill in the limit of a keyed job."""
    key, limit = job.concurrency_key, job.concurrency_limit
    if key is None:
        if limit is not None:
            raise ValueError("concurrency_limit needs a concurrency_key to limit.")
        return
    if not isinstance(key, str) or not 0 < len(key) <= KEY_MAX_LENGTH:
        raise ValueError(
            f"concurrency_key must be a string of 1 to {KEY_MAX_LENGTH} characters or None, "
            f"not {key!r}."
        )
    if limit is None:
        job.concurrency_limit = default_limit
    elif isinstance(limit, bool) or not isinstance(limit, int) or not 1 <= limit <= 2**31 - 1:
        raise ValueError(f"concurrency_limit must be a whole number of at least 1, not {limit!r}.")
