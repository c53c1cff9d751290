"""Pausing queues: the state in the database, and the calls that change and read it.

A paused queue's jobs wait (``NEW``/``READY``) until it is resumed: workers claim
only from their queues that are not paused. Steps already running finish; what a
worker had already claimed may still run (see "Pausing a queue" in the README).
Pausing a queue that has no jobs is allowed: jobs created later wait.

On PostgreSQL a trigger on the table (migration 0011) notifies the queue's wake-up
channel when its row changes, so waiting workers read the state again at once;
elsewhere workers read it at least once per poll interval.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable

from django.db import models, router, transaction
from django.utils import timezone

from . import conf

logger = logging.getLogger(__name__)


class Queue(models.Model):
    """One row per queue ever paused or limited: paused while ``paused_at`` is set."""

    # Binary collation on MariaDB/MySQL (migration 0011), as Job.queue_name's.
    name = models.CharField(max_length=conf.QUEUE_NAME_MAX_LENGTH, primary_key=True)
    paused_at = models.DateTimeField(null=True, blank=True)
    # A rate-limited queue (DBQ_QUEUES "rate"): when its last job started, on the
    # database server's clock (seconds since the Unix epoch). Written by the claims,
    # under the lock on this row; None: never. The last start, not the next one: a
    # rate changed meanwhile applies from the next claim on.
    last_start_at = models.FloatField(null=True, blank=True)

    class Meta:
        app_label = "django_dbq"

    def __str__(self) -> str:
        return f"{self.name} (paused)" if self.paused_at else self.name

    @property
    def paused(self) -> bool:
        return self.paused_at is not None


def queue_names(names: str | Iterable[str]) -> list[str]:
    """``names`` (one name or several) as a list, every one checked; ``ValueError`` otherwise."""
    listed = [names] if isinstance(names, str) else list(names)
    if not listed:
        raise ValueError("Give at least one queue name.")
    for name in listed:
        if not conf.is_queue_name(name):
            raise ValueError(
                f"Queue names are strings of 1 to {conf.QUEUE_NAME_MAX_LENGTH} characters, "
                f"not {name!r}."
            )
    return list(dict.fromkeys(listed))  # each once, in the order given


def _alias(using: str | None) -> str:
    return using or router.db_for_write(Queue)


def pause(names: str | Iterable[str], *, using: str | None = None) -> list[str]:
    """Pause the queues ``names``; returns those that were not paused already.

    Checks every name before writing anything. A queue paused already keeps the
    time it was first paused.
    """
    listed = queue_names(names)
    alias = _alias(using)
    rows = Queue.objects.using(alias)
    now = timezone.now()
    with transaction.atomic(using=alias):
        known = dict(rows.filter(name__in=listed).values_list("name", "paused_at"))
        newly = [name for name in listed if known.get(name) is None]
        rows.filter(name__in=[n for n in newly if n in known]).update(paused_at=now)
        # Two pauses of a new queue at once: the second insert finds the first's row.
        rows.bulk_create(
            [Queue(name=name, paused_at=now) for name in newly if name not in known],
            ignore_conflicts=True,
        )
    if newly:
        logger.info("Paused queue(s) %s", ", ".join(newly))
    return newly


def resume(names: str | Iterable[str], *, using: str | None = None) -> list[str]:
    """Resume the queues ``names``; returns those that were paused."""
    listed = queue_names(names)
    alias = _alias(using)
    rows = Queue.objects.using(alias)
    with transaction.atomic(using=alias):
        paused = set(
            rows.filter(name__in=listed, paused_at__isnull=False).values_list("name", flat=True)
        )
        rows.filter(name__in=paused).update(paused_at=None)
    resumed = [name for name in listed if name in paused]
    if resumed:
        logger.info("Resumed queue(s) %s", ", ".join(resumed))
    return resumed


def paused_queues(among: Iterable[str] | None = None, *, using: str | None = None) -> list[str]:
    """The names of the paused queues (only those in ``among`` if given), sorted."""
    rows = Queue.objects.using(using or router.db_for_read(Queue)).filter(paused_at__isnull=False)
    if among is not None:
        rows = rows.filter(name__in=list(among))
    return sorted(rows.values_list("name", flat=True))


def paused_since(*, using: str | None = None) -> dict[str, object]:
    """Each paused queue's name -> when it was paused."""
    rows = Queue.objects.using(using or router.db_for_read(Queue)).filter(paused_at__isnull=False)
    return dict(rows.values_list("name", "paused_at"))


def is_paused(name: str, *, using: str | None = None) -> bool:
    return bool(paused_queues([queue_names(name)[0]], using=using))
