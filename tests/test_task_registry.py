"""Rows never choose code, for Django Tasks too: a task job runs only a registered Task.

A job named ``django.tasks:<alias>:<path>`` whose path no code registered with
``@task`` for django_dbq's backend is refused when it is created or retried and
failed by the worker, and the module it names is never imported (tests/rogue.py
records its import in ``DBQ_ROGUE_PROBE``; ``this`` prints the Zen of Python).
"""

import sys

import pytest
from django.core.exceptions import ImproperlyConfigured

from django_dbq.exceptions import UnknownJob
from django_dbq.models import Job
from django_dbq.tasks_backend import DatabaseBackend, UnregisteredTask, registry
from tests import tasks_app
from tests.helpers import manage

pytestmark = pytest.mark.processes  # some tests start manage.py subprocesses

try:
    from django.tasks import TaskResultStatus, default_task_backend
    from django.tasks.exceptions import InvalidTask
except ImportError:  # Django 5.2 with the django-tasks backport
    from django_tasks import TaskResultStatus, default_task_backend
    from django_tasks.exceptions import InvalidTaskError as InvalidTask

PROBE = "tests.rogue.anything"
PROBE_JOB = f"django.tasks:default:{PROBE}"
# Module paths that must never be imported on a row's say.
FOREIGN = [PROBE, "this.anything", "os.system"]


def forget(path: str) -> str:
    """Drop the module of ``path`` from ``sys.modules`` and return its name."""
    module = path.rpartition(".")[0]
    if module not in ("os",):
        sys.modules.pop(module, None)
    return module


def never_imported(module: str) -> bool:
    return module == "os" or module not in sys.modules


@pytest.mark.django_db
@pytest.mark.parametrize("path", FOREIGN)
def test_creating_a_job_for_an_unregistered_task_fails_and_imports_nothing(path):
    module = forget(path)
    with pytest.raises(UnknownJob, match="not a registered Django Task"):
        Job.objects.create(name=f"django.tasks:default:{path}")
    with pytest.raises(UnknownJob):
        Job.objects.bulk_create([Job(name=f"django.tasks:default:{path}")])
    assert never_imported(module)
    assert not Job.objects.exists()


@pytest.mark.django_db
@pytest.mark.parametrize(
    "name",
    [
        "django.tasks:nowhere:tests.tasks_app.add",  # no such backend
        "django.tasks:tests.tasks_app.add",  # no alias
    ],
)
def test_task_job_names_that_name_no_backend_are_unknown_jobs(name):
    with pytest.raises(UnknownJob):
        Job.objects.create(name=name)
    assert not Job.objects.exists()


@pytest.mark.django_db
def test_retrying_a_row_that_names_an_unregistered_task_fails_and_changes_nothing():
    job = Job.objects.create(name="noop")
    Job.objects.filter(pk=job.pk).update(name=PROBE_JOB, next_task=PROBE, state="FAILED")
    module = forget(PROBE)
    job.refresh_from_db()
    with pytest.raises(UnknownJob, match="not a registered Django Task"):
        job.retry()
    assert never_imported(module)
    stored = Job.objects.get(pk=job.pk)
    assert (stored.state, stored.attempts) == ("FAILED", job.attempts)


@pytest.mark.django_db
def test_reading_back_a_row_that_names_an_unregistered_task_imports_nothing():
    result = tasks_app.add.enqueue(1, 2)
    Job.objects.filter(pk=result.id).update(name=PROBE_JOB, next_task=PROBE)
    module = forget(PROBE)
    with pytest.raises(InvalidTask, match="not a registered Django Task"):
        default_task_backend.get_result(result.id)
    assert never_imported(module)


@pytest.mark.django_db(transaction=True)
def test_create_job_command_refuses_an_unregistered_task(tmp_path):
    marker = tmp_path / "imported"
    result = manage("create_job", PROBE_JOB, env={"DBQ_ROGUE_PROBE": str(marker)})
    assert result.returncode != 0
    assert "not a registered Django Task" in result.stderr
    assert not marker.exists(), marker.read_text()
    assert not Job.objects.exists()


@pytest.mark.django_db(transaction=True)
def test_the_worker_fails_a_row_naming_an_unregistered_task_and_imports_nothing(
    start_worker, tmp_path
):
    marker = tmp_path / "imported"
    result = tasks_app.add.enqueue(1, 2)
    Job.objects.filter(pk=result.id).update(name=PROBE_JOB, next_task=PROBE)
    worker = start_worker("--drain", env={"DBQ_ROGUE_PROBE": str(marker)})
    assert worker.wait() == 0, worker.log()[-3000:]
    job = Job.objects.get(pk=result.id)
    assert job.state == Job.STATES.FAILED
    assert job.error.startswith("UnregisteredTask: ")
    assert f"'{PROBE}' is not a registered Django Task" in job.error
    assert not marker.exists(), marker.read_text()


@pytest.mark.django_db(transaction=True)
def test_the_worker_discovers_the_tasks_modules_of_installed_apps(start_worker):
    from tests.tasks import discovered  # the worker process imports it by discovery only

    result = discovered.enqueue("found")
    worker = start_worker("--drain")
    assert worker.wait() == 0, worker.log()[-3000:]
    result.refresh()
    assert result.status == TaskResultStatus.SUCCESSFUL
    assert result.return_value == {"discovered": "found"}


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
