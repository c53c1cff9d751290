"""The shape of the package: walls that keep database-specific code in one place.

The import walls (engines know nothing of workers, no cycles...) are import-linter
contracts in pyproject.toml, run by scripts/lint.sh.
"""

import re
import threading
from pathlib import Path

import pytest
from django.core.exceptions import ImproperlyConfigured
from django.db import connection

from django_dbq import backends
from django_dbq.backends.base import Backend

PACKAGE = Path(__file__).resolve().parent.parent / "django_dbq"
# Where telling one database from another is allowed: the engines, and migrations
# (which run before any engine and must stay as they were written).
ALLOWED = ("backends", "migrations")
VENDOR_CHECK = re.compile(r"\.vendor\b|\bvendor\s*[!=]=")


def test_no_vendor_branch_outside_the_database_engines():
    found = []
    for path in sorted(PACKAGE.rglob("*.py")):
        if path.relative_to(PACKAGE).parts[0] in ALLOWED:
            continue
        for number, line in enumerate(path.read_text().splitlines(), 1):
            if VENDOR_CHECK.search(line):
                found.append(f"{path.relative_to(PACKAGE.parent)}:{number}: {line.strip()}")
    assert not found, "vendor checks belong in django_dbq/backends/:\n" + "\n".join(found)


def test_each_database_engine_module_stays_small():
    for path in sorted((PACKAGE / "backends").glob("*.py")):
        lines = len(path.read_text().splitlines())
        assert lines <= 300, f"{path.name} has {lines} lines"


def test_one_engine_per_alias_shared_by_threads():
    engine = backends.for_connection(connection)
    assert isinstance(engine, Backend)
    assert engine.vendor == connection.vendor
    assert engine.alias == connection.alias
    from_thread = []
    thread = threading.Thread(target=lambda: from_thread.append(backends.for_alias("default")))
    thread.start()
    thread.join()
    assert from_thread == [engine]


def test_the_claim_statement_is_built_once_per_list_of_queues():
    from django_dbq.models import Job

    engine = backends.for_connection(connection)
    plan = engine.claim_plan(connection, Job, ["a", "b"])
    assert engine.claim_plan(connection, Job, ("a", "b")) is plan
    assert engine.claim_plan(connection, Job, ["b", "a"]) is not plan


def test_an_unsupported_database_is_refused_with_a_clear_error():
    class Elsewhere:
        alias = "elsewhere"
        vendor = "oracle"
        display_name = "Oracle"

    with pytest.raises(ImproperlyConfigured, match="PostgreSQL, MariaDB/MySQL and SQLite"):
        backends.for_connection(Elsewhere())
