"""The rows recurring jobs (``DBQ_SCHEDULE``) advance, one per schedule entry."""

from __future__ import annotations

from django.db import models


class Schedule(models.Model):
    """The last tick enqueued for each recurring job of ``DBQ_SCHEDULE``.

    Workers advance ``last_tick`` with a conditional UPDATE, so however many of
    them run, each tick enqueues one job.
    """

    name = models.CharField(max_length=100, primary_key=True)
    last_tick = models.DateTimeField()

    class Meta:
        app_label = "django_dbq"

    def __str__(self) -> str:
        return f"{self.name} (last tick {self.last_tick})"
