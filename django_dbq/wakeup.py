"""Waiting for work: LISTEN/NOTIFY on PostgreSQL, polling everywhere else.

The waiters live with their database engines (``django_dbq.backends``); a worker
gets its own from ``backends.for_alias(using).waiter(...)``. These names stay
importable from here.
"""

from __future__ import annotations

from .backends.base import Poller
from .backends.postgresql import SLICE, PostgresListener, channel_name

__all__ = ["SLICE", "Poller", "PostgresListener", "channel_name"]
