"""Rows never choose code, for Django Tasks too: a task job runs only a registered Task.

A job named ``django.tasks:<alias>:<path>`` whose path no code registered with
``@task`` for django_dbq's backend is refused when it is created or retried and
failed by the worker, and the module it names is never imported (tests/rogue.py
records its import in ``DBQ_ROGUE_PROBE``; ``this`` prints the Zen of Python).
"""

import pytest

from django_dbq.models import Job
from tests import tasks_app
from tests.helpers import manage

try:
    from django.tasks import TaskResultStatus
except ImportError:  # Django 5.2 with the django-tasks backport
    from django_tasks import TaskResultStatus

pytestmark = [pytest.mark.processes, pytest.mark.django_line]

PROBE = "tests.rogue.anything"
PROBE_JOB = f"django.tasks:default:{PROBE}"


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
