"""System checks in real processes: ``manage.py check`` and a worker refuse bad configuration."""

import pytest

from django_dbq.models import Job
from tests.helpers import manage

pytestmark = [pytest.mark.processes, pytest.mark.django_line]


def test_manage_py_check_reports_every_problem_with_hints_and_fails():
    result = manage("check", settings="tests.settings_broken")
    assert result.returncode != 0
    for check_id in ("E004", "E006", "E007", "E008"):
        assert f"django_dbq.{check_id}" in result.stderr, result.stderr
    assert "HINT:" in result.stderr
    assert "tests.jobs.does_not_exist" in result.stderr


@pytest.mark.django_db(transaction=True)
def test_a_worker_with_a_broken_configuration_refuses_to_start():
    job = Job.objects.create(name="noop")
    result = manage("worker", "--drain", settings="tests.settings_broken")
    assert result.returncode != 0
    assert "SystemCheckError" in result.stderr and "django_dbq.E006" in result.stderr
    assert "Starting job worker" not in result.stdout
    assert Job.objects.get(pk=job.pk).state == "NEW"


@pytest.mark.django_db(transaction=True)
def test_a_worker_with_a_clean_configuration_passes_its_checks_and_starts():
    job = Job.objects.create(name="noop")
    result = manage("worker", "--drain")
    assert result.returncode == 0, result.stderr
    assert 'Starting job worker for queue "default"' in result.stdout
    assert Job.objects.get(pk=job.pk).state == "COMPLETE"


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
