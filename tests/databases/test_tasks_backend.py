"""Django's Tasks framework on django_dbq, without a worker: the backend's features and what
enqueue refuses (arguments, names, retry settings, priority), on every supported Django."""

import datetime

import pytest
from django.core.exceptions import ImproperlyConfigured

from django_dbq.models import Job
from django_dbq.tasks_backend import DatabaseBackend
from tests import tasks_app

try:
    from django.tasks import task_backends
    from django.tasks.exceptions import InvalidTask
    from django.tasks.signals import task_enqueued
except ImportError:  # Django 5.2 with the django-tasks backport
    from django_tasks import task_backends
    from django_tasks.exceptions import InvalidTaskError as InvalidTask
    from django_tasks.signals import task_enqueued

pytestmark = [pytest.mark.database, pytest.mark.django_db(transaction=True)]


def test_backend_feature_flags_are_true():
    backend = task_backends["default"]
    assert isinstance(backend, DatabaseBackend)
    assert backend.supports_defer
    assert backend.supports_async_task
    assert backend.supports_get_result
    assert backend.supports_priority


@pytest.mark.parametrize(
    "args, kwargs",
    [
        ((object(),), {}),
        ((), {"when": datetime.date(2026, 1, 1)}),
        (({1: "integer key"},), {}),
        ((float("nan"),), {}),
    ],
    ids=["object", "date", "int-key", "nan"],
)
def test_non_json_arguments_are_rejected_and_nothing_is_stored(args, kwargs):
    with pytest.raises(TypeError, match="JSON"):
        tasks_app.echo.enqueue(*args, **kwargs)
    assert not Job.objects.exists()


def test_a_task_bound_under_another_name_is_refused_at_enqueue():
    with pytest.raises(InvalidTask, match="does not name this Task"):
        tasks_app.renamed.enqueue(1)
    assert not Job.objects.exists()


def test_invalid_retry_settings_are_refused():
    with pytest.raises(ImproperlyConfigured, match="max_attempts"):
        DatabaseBackend("broken", {"OPTIONS": {"max_attempts": 0}})
    with pytest.raises(ImproperlyConfigured, match="unknown key"):
        DatabaseBackend("broken", {"OPTIONS": {"retries": 3}})
    with pytest.raises(ImproperlyConfigured, match="unknown key"):
        DatabaseBackend("broken", {"OPTIONS": {"tasks": {"app.tasks.t": {"retries": 3}}}})
    with pytest.raises(ImproperlyConfigured, match="retry_delay"):
        DatabaseBackend("broken", {"OPTIONS": {"tasks": {"app.tasks.t": {"retry_delay": -1}}}})
    with pytest.raises(InvalidTask, match="retry_backoff"):
        tasks_app.add.__class__(func=tasks_app._hidden, retry_backoff="sometimes")


def test_system_check_reports_per_task_settings_for_unknown_tasks():
    assert task_backends["retrying"].check() == []
    backend = DatabaseBackend(
        "checked",
        {"OPTIONS": {"tasks": {"tests.tasks_app.nowhere": {}, "tests.tasks_app.add": {}}}},
    )
    problems = backend.check()
    assert [problem.id for problem in problems] == ["django_dbq.E021"]
    assert "tests.tasks_app.nowhere" in problems[0].msg


def test_enqueue_in_a_failing_signal_receiver_enqueues_nothing():
    def refuse(sender, task_result, **kwargs):
        raise RuntimeError("receiver says no")

    task_enqueued.connect(refuse, dispatch_uid="test-refuse")
    try:
        with pytest.raises(RuntimeError, match="receiver says no"):
            tasks_app.add.enqueue(1, 2)
    finally:
        task_enqueued.disconnect(dispatch_uid="test-refuse")
    assert not Job.objects.exists()


def test_priority_must_be_in_djangos_range():
    with pytest.raises(InvalidTask):
        tasks_app.add.using(priority=101)


def test_task_definitions_take_the_dbq_defaults_the_backend_does_not_set(settings):
    from django_dbq.definitions import get_definition

    settings.DBQ_MAX_SNOOZES, settings.DBQ_MAX_ATTEMPTS = 3, 4
    definition = get_definition("django.tasks:default:tests.tasks_app.add")
    assert (definition.max_snoozes, definition.max_attempts) == (3, 4)
    assert definition.retry_backoff == "fixed"  # set by the backend's OPTIONS


def test_only_the_running_task_reports_progress_through_its_result():
    result = tasks_app.counts_rows.enqueue(3)
    fetched = task_backends["default"].get_result(result.id)
    for held in (result, fetched):
        with pytest.raises(RuntimeError, match="Only the running task"):
            held.set_progress(1, 3)
    assert Job.objects.get(pk=result.id).progress is None
    assert task_backends["default"].get_result(result.id).progress is None
