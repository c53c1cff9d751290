"""The registry of Django Tasks (no database): what ``@task`` registers, and the backend's
options and checks for task modules. Rows never choosing code: processes/test_task_registry.py."""

import pytest
from django.core.exceptions import ImproperlyConfigured

from django_dbq.exceptions import UnknownJob
from django_dbq.tasks_backend import DatabaseBackend, UnregisteredTask, registry
from tests import tasks_app

try:
    from django.tasks.exceptions import InvalidTask
except ImportError:  # Django 5.2 with the django-tasks backport
    from django_tasks.exceptions import InvalidTaskError as InvalidTask

pytestmark = pytest.mark.unit

PROBE = "tests.rogue.anything"  # a task path no code registered


def test_defining_a_task_registers_it():
    assert registry.registered("tests.tasks_app.add") is tasks_app.add
    assert registry.registered(PROBE) is None
    # A copy made by using() keeps the task's own entry.
    tasks_app.add.using(priority=5)
    assert registry.registered("tests.tasks_app.add") is tasks_app.add


def test_an_unregistered_task_is_an_unknown_job_and_an_invalid_task():
    assert issubclass(UnregisteredTask, UnknownJob)
    assert issubclass(UnregisteredTask, InvalidTask)


def test_task_modules_option_must_be_a_list_of_module_paths():
    for bad in ("tests.tasks_app", [""], [3]):
        with pytest.raises(ImproperlyConfigured, match="task_modules"):
            DatabaseBackend("broken", {"OPTIONS": {"task_modules": bad}})


def test_system_check_reports_task_modules_that_do_not_import():
    backend = DatabaseBackend("checked", {"OPTIONS": {"task_modules": ["tests.no_such_module"]}})
    problems = backend.check()
    assert [problem.id for problem in problems] == ["django_dbq.E022"]
    assert "tests.no_such_module" in problems[0].msg
