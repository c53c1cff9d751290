"""The shape of the tests: each test module sits in the directory of its kind.

``-m unit`` and ``tests/unit`` (likewise database and processes) select the same tests.
"""

import importlib
import inspect
import unittest
from pathlib import Path

import pytest
from django.test import TransactionTestCase

pytestmark = pytest.mark.unit

TESTS = Path(__file__).resolve().parents[1]
# Each test directory and the marker (pyproject.toml) that selects it with -m. The support
# modules (settings_*, jobs, tasks...) stay in tests/ itself: workers import them by dotted path.
KINDS = {"unit": "unit", "databases": "database", "processes": "processes"}


def _marks(thing: object) -> set[str]:
    marks = getattr(thing, "pytestmark", [])
    return {mark.name for mark in (marks if isinstance(marks, list) else [marks])}


def _kind(test: object, marks: set[str]) -> str:
    """What a test needs, as conftest.py reads it: worker subprocesses, the database, or neither."""
    if "processes" in marks:
        return "processes"
    if isinstance(test, type):
        if issubclass(test, TransactionTestCase) or "django_db" in marks:
            return "database"
        return "unit"
    if "start_worker" in inspect.signature(test).parameters:
        return "processes"
    return "database" if "django_db" in marks else "unit"


def _tests(module: object) -> list[tuple[str, object]]:
    return [
        (name, thing)
        for name, thing in vars(module).items()
        if getattr(thing, "__module__", None) == module.__name__
        and (
            (name.startswith("test") and callable(thing) and not isinstance(thing, type))
            or (isinstance(thing, type) and issubclass(thing, unittest.TestCase))
        )
    ]


def test_each_test_module_sits_in_the_directory_of_its_marker():
    misplaced = [
        str(path.relative_to(TESTS))
        for path in TESTS.rglob("test_*.py")
        if path.parent.relative_to(TESTS).parts[:1] not in [(name,) for name in KINDS]
    ]
    assert not misplaced, f"test modules belong in unit/, databases/ or processes/: {misplaced}"
    wrong = []
    for directory, kind in KINDS.items():
        for path in sorted((TESTS / directory).glob("test_*.py")):
            module = importlib.import_module(f"tests.{directory}.{path.stem}")
            declared = _marks(module) & set(KINDS.values())
            if declared != {kind}:
                wrong.append(f"{directory}/{path.name}: pytestmark {sorted(declared)}, not {kind}")
            tests = _tests(module)
            assert tests, f"{directory}/{path.name} holds no tests"
            for name, test in tests:
                needs = _kind(test, _marks(module) | _marks(test))
                if needs != kind:
                    wrong.append(f"{directory}/{path.name}::{name} is a {needs} test")
    assert not wrong, "\n".join(wrong)
