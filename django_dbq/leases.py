"""The clock leases run on: absolute UTC, whatever ``USE_TZ`` says.

With ``USE_TZ = False`` Django's ``timezone.now()`` is local wall-clock time, which
jumps an hour at each daylight-saving change: jumping forward would make every
running job's lease look lapsed (and get it rescued while it runs), jumping back
would hold rescues up for an hour. Lease columns are written and compared with
this clock only, so they never jump: an aware UTC time where the database stores
absolute moments (PostgreSQL), a naive UTC one where it stores wall-clock values.
"""

from __future__ import annotations

import datetime

from django.conf import settings
from django.db import connections


def now(using: str = "default") -> datetime.datetime:
    """The current time on the lease clock of database ``using``."""
    current = datetime.datetime.now(datetime.UTC)
    if settings.USE_TZ or connections[using].features.supports_timezones:
        return current
    return current.replace(tzinfo=None)


def deadline(seconds: float, using: str = "default") -> datetime.datetime:
    """When a lease taken or renewed now on ``using`` for ``seconds`` lapses."""
    return now(using) + datetime.timedelta(seconds=seconds)
