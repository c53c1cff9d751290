"""The management commands run as ``manage.py`` subprocesses: bad input, no task code imported."""

import datetime
import uuid

import pytest
from django.utils import timezone

from django_dbq.models import Job
from tests.helpers import manage

pytestmark = [pytest.mark.processes, pytest.mark.django_line, pytest.mark.django_db]


@pytest.mark.django_db(transaction=True)
def test_create_job_in_a_subprocess_imports_no_task_code(tmp_path):
    marker = tmp_path / "imported"
    result = manage("create_job", "probe", env={"DBQ_IMPORT_PROBE": str(marker)})
    assert result.returncode == 0, result.stderr
    assert Job.objects.get(pk=result.stdout.strip()).next_task == "tests.probe_tasks.run"
    assert not marker.exists(), marker.read_text()


@pytest.mark.django_db(transaction=True)
@pytest.mark.parametrize(
    "args",
    [
        ["create_job", "nope"],
        ["create_job", "noop", "--workspace", "[]"],
        ["delete_old_jobs", "--hours", "-1"],
        ["queue_depth", "--format", "xml"],
        ["worker", "--rate_limit", "-1"],
        ["cancel_job", "not-a-uuid"],
        ["retry_job", str(uuid.UUID(int=1))],
    ],
)
def test_bad_input_exits_non_zero_with_a_one_line_message_and_writes_nothing(args):
    done = Job.objects.create(
        name="noop", state="COMPLETE", created=timezone.now() - datetime.timedelta(days=3)
    )
    result = manage(*args)
    assert result.returncode != 0
    assert result.stdout == ""
    lines = [line for line in result.stderr.splitlines() if line.strip()]
    # The message is one line (argparse errors print the usage above it).
    assert lines[-1].startswith("CommandError: ") or ": error: " in lines[-1], result.stderr
    assert "Traceback" not in result.stderr
    assert list(Job.objects.all()) == [done]
    assert Job.objects.get().state == "COMPLETE"
