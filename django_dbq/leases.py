"""The clock leases run on: the database server's, in absolute UTC.

One clock for the whole fleet. Workers on many hosts share one database, and a
lease stamped by one host is judged lapsed by another: if each used its own clock,
one host running two minutes fast would find every other host's running jobs
lapsed and rescue them (their steps would run twice), and one running slow would
write leases that others find lapsed at once. So on PostgreSQL and MariaDB/MySQL
every lease deadline written and every "has it lapsed?" comparison uses the
database server's clock, and hosts need not agree on the time at all.

How: each process reads the server's clock now and then (one ``SELECT``, per
database alias, at most every ``REMEASURE_SECONDS``) and, in between, advances
that reading with a local clock that never jumps (``CLOCK_BOOTTIME``: monotonic,
and it keeps counting while the host is suspended). The reading is taken as the
server's time at the midpoint of the query's round trip, so it is off by at most
half a round trip (milliseconds, against leases of tens of seconds), plus the
local clock's drift over half a minute (parts per million). The local wall clock
is never used, so stepping it (NTP, an operator) moves no lease either.

Why not compute the deadlines in SQL (``clock_timestamp() + interval``)? That is
exact, but every lease write would carry a vendor-specific expression (the claim,
the heartbeat, checkpoints, fenced writes), and on MariaDB the claim could no
longer tell the claimed jobs their lease without reading it back. Reading the
server clock twice a minute costs no round trip on the claim path and keeps
every lease write a plain parameter.

SQLite: every process using the database file runs on the one host, so the local
clock is the database's clock and no query is needed.

``USE_TZ``: with ``USE_TZ = False`` Django's ``timezone.now()`` is local
wall-clock time, which jumps an hour at each daylight-saving change: jumping
forward would make every running job's lease look lapsed (and get it rescued
while it runs), jumping back would hold rescues up for an hour. Lease times are
therefore an aware UTC time where the database stores absolute moments
(PostgreSQL), a naive UTC one where it stores wall-clock values (MariaDB/MySQL,
SQLite), whatever ``USE_TZ`` says.
"""

from __future__ import annotations

import dataclasses
import datetime
import functools
import logging
import threading
import time

from django.conf import settings
from django.db import DatabaseError, connections

from . import backends

logger = logging.getLogger(__name__)

# How often each process reads the server's clock again (picks up the server's own
# adjustments, a fail-over to another server, and bounds the local clock's drift).
REMEASURE_SECONDS = 30.0
# After a failed reading, how soon to try again while the last good one is used.
RETRY_SECONDS = 5.0
# An offset worth a warning: the host's clock is off, though leases do not mind.
NOTABLE_OFFSET_SECONDS = 1.0


# A local clock that never jumps and, on Linux, keeps counting while the host is suspended.
if hasattr(time, "CLOCK_BOOTTIME"):
    _ticks = functools.partial(time.clock_gettime, time.CLOCK_BOOTTIME)
else:  # pragma: no cover - not Linux
    _ticks = time.monotonic


@dataclasses.dataclass(frozen=True)
class _Reading:
    """The server's clock read once: ``server_epoch`` was the time at local ``ticks``."""

    server_epoch: float
    ticks: float
    due: float  # local ticks after which to read the server's clock again
    offset: float  # server clock minus this host's wall clock (for the logs only)

    def server_now(self) -> float:
        return self.server_epoch + (_ticks() - self.ticks)


_readings: dict[str, _Reading] = {}
_lock = threading.Lock()


def server_epoch(using: str = "default") -> float:
    """The database server's current time, seconds since the Unix epoch (UTC).

    On SQLite (and any database without a clock query) this is the local clock.
    Raises ``DatabaseError`` only when the server's clock was never read and cannot
    be read now, or the read failed inside a transaction (which is then broken).
    """
    # The server's time as seconds since the Unix epoch, UTC, computed by the server
    # itself (no session time zone involved); each engine knows its query.
    sql = backends.for_alias(using).server_clock_sql
    if sql is None:
        return time.time()
    with _lock:
        reading = _readings.get(using)
        stale = reading is None or _ticks() >= reading.due
        if stale and reading is not None:
            # This thread reads the clock; the others go on with the last reading meanwhile.
            _readings[using] = dataclasses.replace(reading, due=_ticks() + RETRY_SECONDS)
    if stale:
        reading = _read_server_clock(using, sql, reading)
    return reading.server_now()


def _read_server_clock(using: str, sql: str, previous: _Reading | None) -> _Reading:
    connection = connections[using]  # this thread's own connection
    try:
        with connection.cursor() as cursor:
            sent = _ticks()
            cursor.execute(sql)
            (value,) = cursor.fetchone()
            received = _ticks()
    except DatabaseError as error:
        if previous is None or connection.in_atomic_block:
            raise
        logger.warning(
            "Could not read the clock of database %r (%s); using the last reading", using, error
        )
        return previous
    midpoint = (sent + received) / 2
    offset = float(value) - (time.time() - (_ticks() - midpoint))
    reading = _Reading(float(value), midpoint, received + REMEASURE_SECONDS, offset)
    with _lock:
        earlier = _readings.get(using)  # maybe another thread's, read meanwhile
        _readings[using] = reading
    if abs(offset) >= NOTABLE_OFFSET_SECONDS and (
        earlier is None or abs(earlier.offset) < NOTABLE_OFFSET_SECONDS
    ):
        logger.warning(
            "This host's clock is %+.1f s off the clock of database %r; leases use the database's",
            -offset,
            using,
        )
    logger.debug(
        "Database %r clock: %+.3f s from this host's (round trip %.3f s)",
        using,
        offset,
        received - sent,
    )
    return reading


def now(using: str = "default") -> datetime.datetime:
    """The current time on the lease clock of database ``using`` (its server's clock, UTC)."""
    current = datetime.datetime.fromtimestamp(server_epoch(using), datetime.UTC)
    if settings.USE_TZ or connections[using].features.supports_timezones:
        return current
    return current.replace(tzinfo=None)


def deadline(seconds: float, using: str = "default") -> datetime.datetime:
    """When a lease taken or renewed now on ``using`` for ``seconds`` lapses."""
    return now(using) + datetime.timedelta(seconds=seconds)
