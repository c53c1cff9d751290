"""The clock leases run on: UTC, whatever ``USE_TZ`` says.

With ``USE_TZ = False`` Django's ``timezone.now()`` is local wall-clock time, which
jumps an hour at each daylight-saving change: jumping forward would make every
running job's lease look lapsed (and get it rescued while it runs), jumping back
would hold rescues up for an hour. Lease columns are written and compared with
this clock only, so they never jump.
"""

from __future__ import annotations

import datetime

from django.conf import settings
from django.utils import timezone


def now() -> datetime.datetime:
    """The current time on the lease clock (naive UTC when ``USE_TZ`` is off)."""
    if settings.USE_TZ:
        return timezone.now()
    return datetime.datetime.now(datetime.UTC).replace(tzinfo=None)


def deadline(seconds: float) -> datetime.datetime:
    """When a lease taken or renewed now for ``seconds`` lapses."""
    return now() + datetime.timedelta(seconds=seconds)
