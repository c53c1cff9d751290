"""Rows never choose code (see processes/test_task_registry.py), in this process: a job naming
an unregistered Task is refused when created, retried or read back; its module is never imported."""

import sys

import pytest

from django_dbq.exceptions import UnknownJob
from django_dbq.models import Job
from tests import tasks_app

try:
    from django.tasks import default_task_backend
    from django.tasks.exceptions import InvalidTask
except ImportError:  # Django 5.2 with the django-tasks backport
    from django_tasks import default_task_backend
    from django_tasks.exceptions import InvalidTaskError as InvalidTask

pytestmark = pytest.mark.database

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
