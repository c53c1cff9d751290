"""The shape of the package: walls that keep database-specific code in one place.

The import walls (engines know nothing of workers, no cycles...) are import-linter
contracts in pyproject.toml, run by scripts/lint.sh.
"""

import ast
import re
import threading
from pathlib import Path

import pytest
from django.core.exceptions import ImproperlyConfigured
from django.db import connection

from django_dbq import backends
from django_dbq.backends.base import Backend

PACKAGE = Path(__file__).resolve().parents[2] / "django_dbq"
# Where telling one database from another is allowed: the engines, and migrations
# (which run before any engine and must stay as they were written).
ALLOWED = ("backends", "migrations")
VENDOR_CHECK = re.compile(r"\.vendor\b|\bvendor\s*[!=]=")

pytestmark = pytest.mark.unit


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


MODULE_LINES = 300
CLASS_LINES = 200


def _modules():
    for path in sorted(PACKAGE.rglob("*.py")):
        if path.relative_to(PACKAGE).parts[0] != "migrations":
            yield path, ast.parse(path.read_text())


def test_no_module_or_class_grows_past_what_one_reader_holds():
    too_long = []
    for path, tree in _modules():
        lines = len(path.read_text().splitlines())
        if lines > MODULE_LINES:
            too_long.append(f"{path.relative_to(PACKAGE.parent)}: {lines} lines")
        for node in ast.walk(tree):
            if isinstance(node, ast.ClassDef) and node.end_lineno - node.lineno > CLASS_LINES:
                length = node.end_lineno - node.lineno + 1
                too_long.append(f"{path.relative_to(PACKAGE.parent)}: class {node.name}, {length}")
    assert not too_long, "split these along their concerns:\n" + "\n".join(too_long)


def test_only_the_engine_changes_a_jobs_state():
    """No UPDATE sets ``state`` outside django_dbq/engine/ (the claim SQL is the backends')."""
    found = []
    for path, tree in _modules():
        if path.relative_to(PACKAGE).parts[0] in ("engine", "backends"):
            continue
        for node in ast.walk(tree):
            if (
                isinstance(node, ast.Call)
                and isinstance(node.func, ast.Attribute)
                and node.func.attr in ("update", "fenced_update", "bulk_update")
                and any(keyword.arg == "state" for keyword in node.keywords)
            ):
                found.append(f"{path.relative_to(PACKAGE.parent)}:{node.lineno}")
    assert not found, "state changes belong in django_dbq/engine/:\n" + "\n".join(found)


def test_no_state_is_spelled_as_a_bare_string_outside_its_vocabulary():
    """States are named through django_dbq.states (migrations keep what they wrote)."""
    names = {"NEW", "READY", "PROCESSING", "STOPPING", "FAILED", "COMPLETE", "CANCELLED", "WAITING"}
    found = []
    for path, tree in _modules():
        if path.relative_to(PACKAGE).as_posix() == "states.py":
            continue
        for node in ast.walk(tree):
            if isinstance(node, ast.Constant) and node.value in names:
                found.append(f"{path.relative_to(PACKAGE.parent)}:{node.lineno} {node.value!r}")
    assert not found, "use django_dbq.states.State:\n" + "\n".join(found)
