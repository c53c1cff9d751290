"""System checks: ``manage.py check`` and worker start report bad configuration with hints."""

import pytest
from django.core import checks
from django.test import override_settings

from django_dbq.checks import check_jobs, check_settings

pytestmark = pytest.mark.unit


def ids(errors):
    return sorted(error.id for error in errors)


def assert_hinted(errors):
    assert errors
    for error in errors:
        assert error.level == checks.ERROR
        assert error.hint, f"{error.id} has no hint: {error.msg}"


def test_the_test_settings_are_clean():
    assert check_jobs() == []
    assert check_settings() == []


@pytest.mark.parametrize(
    "jobs, check_id, words",
    [
        (["tests.jobs.noop"], "django_dbq.E001", "JOBS must be a dict"),
        ({"x": {"tasks": "tests.jobs.noop"}}, "django_dbq.E002", "non-empty list of tasks"),
        ({"x": ["noop"]}, "django_dbq.E003", "dotted path"),
        (
            {"x": {"tasks": ["tests.jobs.noop"], "on_failure": "a.b"}},
            "django_dbq.E004",
            "on_failure",
        ),
        (
            {"x": {"tasks": ["tests.jobs.noop"], "max_attempts": -2}},
            "django_dbq.E005",
            "max_attempts",
        ),
        (
            {"x": {"tasks": ["tests.jobs.noop"], "retry_backoff": "x"}},
            "django_dbq.E005",
            "retry_backoff",
        ),
        ({"x": {"tasks": ["tests.jobs.noop"], "timeout": -1}}, "django_dbq.E005", "timeout"),
        ({"x": ["tests.jobs.missing"]}, "django_dbq.E006", "cannot be imported"),
        ({"x": ["tests.nomodule.task"]}, "django_dbq.E006", "cannot be imported"),
        ({"x": ["tests.explodes.task"]}, "django_dbq.E006", "RuntimeError"),
        ({"x": ["tests.jobs.not_callable"]}, "django_dbq.E006", "not callable"),
        (
            {"x": {"tasks": ["tests.jobs.noop"], "failure_hook": "tests.jobs.nope"}},
            "django_dbq.E006",
            "failure_hook",
        ),
    ],
)
def test_job_problems_are_reported(jobs, check_id, words):
    with override_settings(JOBS=jobs):
        errors = check_jobs()
    assert ids(errors) == [check_id]
    assert words in errors[0].msg
    assert_hinted(errors)


@pytest.mark.parametrize(
    "setting, value",
    [
        ("DBQ_LEASE_SECONDS", 0),
        ("DBQ_POLL_INTERVAL", "1"),
        ("DBQ_LISTEN", "yes"),
        ("DBQ_CLAIM_BATCH_SIZE", 0),
        ("DBQ_MAX_ATTEMPTS", 1.5),
        ("DBQ_RETRY_BACKOFF", "linear"),
        ("DBQ_RETRY_DELAY", -1),
        ("DBQ_RETRY_DELAY_MAX", 0),
        ("DBQ_RESCUE_MAX_ATTEMPTS", None),
        ("DBQ_ERROR_HISTORY", 0),
        ("DBQ_TRACEBACK_CHARS", True),
        ("DBQ_SCHEDULE", ["noop"]),
    ],
)
def test_invalid_settings_are_reported_once(setting, value):
    with override_settings(**{setting: value}):
        errors = check_settings() + check_jobs()
    assert ids(errors) == ["django_dbq.E008"]
    assert setting in errors[0].msg
    assert_hinted(errors)


@pytest.mark.parametrize(
    "schedule, words",
    [
        ({"s": {"job": "noop", "cron": "61 * * * *"}}, "not a valid cron"),
        ({"s": {"job": "noop"}}, "not a valid cron"),
        ({"s": {"job": "missing", "cron": "* * * * *"}}, "not defined in JOBS"),
        ({"s": {"job": ["noop"], "cron": "* * * * *"}}, "not defined in JOBS"),
        ({"s": {"job": "noop", "cron": "* * * * *", "every": 1}}, "unknown key"),
        ({"s": {"job": "noop", "cron": "* * * * *", "workspace": []}}, "workspace"),
        ({"s": {"job": "noop", "cron": "* * * * *", "queue_name": ""}}, "queue_name"),
        ({"s": {"job": "noop", "cron": "* * * * *", "priority": "high"}}, "priority"),
        ({"s": "noop"}, "must be a dict"),
        ({"s": {"job": "noop", "cron": "* * * * *", "unique_key": ""}}, "unique_key"),
        ({"": {"job": "noop", "cron": "* * * * *"}}, "names must be"),
    ],
)
def test_schedule_problems_are_reported(schedule, words):
    with override_settings(DBQ_SCHEDULE=schedule):
        errors = check_settings()
    assert ids(errors) == ["django_dbq.E007"]
    assert words in errors[0].msg
    assert_hinted(errors)
