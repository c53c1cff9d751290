"""One engine per database: the only place that knows PostgreSQL from MariaDB/MySQL or SQLite.

Everything django_dbq says differently to each database lives in one module per
database (``postgresql``, ``mysql``, ``sqlite``) behind one interface
(:class:`~django_dbq.backends.base.Backend`): the claim statement, the bulk insert,
the worker's fast writes, the server clock query, waiting for work and the worker
connection's set-up. Everyone else asks :func:`for_connection` (or :func:`for_alias`)
and never looks at ``connection.vendor``.

The engines know nothing of workers, commands, the admin or the Tasks backend, nor
of the job model: callers hand them the model and the values.
"""

from __future__ import annotations

import threading

from django.core.exceptions import ImproperlyConfigured
from django.db import connections

from .base import Backend, Poller
from .claims import Claim, ClaimPlan
from .limits import RateGate
from .mysql import MySQLBackend
from .postgresql import PostgreSQLBackend
from .sqlite import SQLiteBackend

__all__ = ["Backend", "Claim", "ClaimPlan", "Poller", "RateGate", "for_alias", "for_connection"]

ENGINES: dict[str, type[Backend]] = {
    engine.vendor: engine for engine in (PostgreSQLBackend, MySQLBackend, SQLiteBackend)
}

_engines: dict[tuple[str, str], Backend] = {}
_lock = threading.Lock()


def for_connection(connection) -> Backend:
    """The engine of ``connection``'s database, one instance per alias (shared by threads).

    Raises ``ImproperlyConfigured`` for a database django_dbq does not support.
    """
    key = (connection.alias, connection.vendor)
    engine = _engines.get(key)
    if engine is None:
        engine_class = ENGINES.get(connection.vendor)
        if engine_class is None:
            raise ImproperlyConfigured(
                f"django_dbq supports PostgreSQL, MariaDB/MySQL and SQLite; database "
                f"{connection.alias!r} is {connection.display_name} ({connection.vendor})."
            )
        with _lock:
            engine = _engines.setdefault(key, engine_class(connection.alias))
    return engine


def for_alias(using: str) -> Backend:
    """The engine of the database ``using`` (see :func:`for_connection`)."""
    return for_connection(connections[using])
