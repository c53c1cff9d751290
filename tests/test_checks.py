"""System checks: ``manage.py check`` and worker start report bad configuration with hints."""

import pytest
from django.core import checks
from django.test import override_settings

from django_dbq.checks import check_jobs, check_settings
from django_dbq.models import Job
from tests.helpers import manage

pytestmark = pytest.mark.database


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


@pytest.mark.processes
def test_manage_py_check_reports_every_problem_with_hints_and_fails():
    result = manage("check", settings="tests.settings_broken")
    assert result.returncode != 0
    for check_id in ("E004", "E006", "E007", "E008"):
        assert f"django_dbq.{check_id}" in result.stderr, result.stderr
    assert "HINT:" in result.stderr
    assert "tests.jobs.does_not_exist" in result.stderr


@pytest.mark.processes
@pytest.mark.django_db(transaction=True)
def test_a_worker_with_a_broken_configuration_refuses_to_start():
    job = Job.objects.create(name="noop")
    result = manage("worker", "--drain", settings="tests.settings_broken")
    assert result.returncode != 0
    assert "SystemCheckError" in result.stderr and "django_dbq.E006" in result.stderr
    assert "Starting job worker" not in result.stdout
    assert Job.objects.get(pk=job.pk).state == "NEW"


@pytest.mark.processes
@pytest.mark.django_db(transaction=True)
def test_a_worker_with_a_clean_configuration_passes_its_checks_and_starts():
    job = Job.objects.create(name="noop")
    result = manage("worker", "--drain")
    assert result.returncode == 0, result.stderr
    assert 'Starting job worker for queue "default"' in result.stdout
    assert Job.objects.get(pk=job.pk).state == "COMPLETE"


@pytest.mark.processes
@pytest.mark.django_db(transaction=True)
def test_commands_that_need_no_task_code_work_while_a_task_module_is_missing():
    settings = "tests.settings_missing_task"
    created = manage("create_job", "broken", settings=settings)
    assert created.returncode == 0, created.stderr
    job = Job.objects.get(pk=created.stdout.strip())
    assert job.next_task == "tests.missing_module.task"
    depth = manage("queue_depth", settings=settings)
    assert depth.stdout == "event=queue_depths default=1\n", depth.stderr
    assert manage("delete_old_jobs", settings=settings).returncode == 0
    assert manage("cancel_job", str(job.pk), settings=settings).returncode == 0
    assert manage("retry_job", str(job.pk), settings=settings).returncode == 0
    # The worker, which would import it, refuses to start.
    worker = manage("worker", "--drain", settings=settings)
    assert worker.returncode != 0 and "tests.missing_module.task" in worker.stderr
    assert Job.objects.get(pk=job.pk).state == "READY"
