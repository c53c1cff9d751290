"""Code written for django-db-queue 3.x sees the same thing here as under the real 3.3.0.

The same hooks (tests/hook_probe.py) run under django-db-queue 3.3.0, installed from
the package registry into a virtualenv of its own (tests/legacy_venv.py), and under
this library; what each hook saw and what was saved must match, but for the one
difference the README's upgrade section lists.
"""

import json
import signal
from pathlib import Path

import pytest
from django.test import override_settings

from django_dbq.checks import check_jobs, check_settings
from django_dbq.models import Job
from django_dbq.worker import Worker
from tests.conftest import wait_for
from tests.helpers import executions, manage
from tests.legacy_venv import run_legacy_script
from tests.models import Execution

pytestmark = [
    pytest.mark.processes,
    pytest.mark.django_line,
    pytest.mark.django_db(transaction=True),
]

LEGACY_SCRIPT = Path(__file__).resolve().parents[1] / "legacy" / "run_hooks.py"


def read_log(path: Path) -> list[dict]:
    lines = [json.loads(line) for line in path.read_text().splitlines()]
    for line in lines:  # our JOBS name the module tests.hook_probe, 3.3.0's hook_probe
        line["next_task"] = line["next_task"].removeprefix("tests.")
        if isinstance(line["workspace"].get("post"), list):
            line["workspace"]["post"] = [
                t.removeprefix("tests.") for t in line["workspace"]["post"]
            ]
    return lines


def run_ours(workspace: dict, log: Path, monkeypatch) -> dict:
    monkeypatch.setenv("DBQ_HOOK_LOG", str(log))
    job = Job.objects.create(name="hook_probe", workspace=workspace)
    worker = Worker("default")
    for _ in range(10):
        worker._process_job()
        job.refresh_from_db()
        if job.state in ("COMPLETE", "FAILED"):
            break
    return {"state": job.state, "next_task": job.next_task, "workspace": job.workspace}


def normalise(outcome: dict) -> dict:
    outcome = dict(outcome, next_task=outcome["next_task"].removeprefix("tests."))
    post = outcome["workspace"].get("post")
    if isinstance(post, list):
        outcome["workspace"] = dict(
            outcome["workspace"], post=[t.removeprefix("tests.") for t in post]
        )
    return outcome


@pytest.mark.parametrize(
    "workspace",
    [{}, {"fail": True}, {"post_hook_raises": True}],
    ids=["success", "task_fails", "post_hook_raises"],
)
def test_hooks_see_and_save_what_they_did_under_django_db_queue_3_3_0(
    workspace, tmp_path, monkeypatch
):
    legacy_log, our_log = tmp_path / "legacy.jsonl", tmp_path / "ours.jsonl"
    legacy = run_legacy_script(
        LEGACY_SCRIPT,
        str(tmp_path / "legacy.sqlite3"),
        json.dumps(workspace),
        env={"DBQ_HOOK_LOG": str(legacy_log)},
    )
    ours = normalise(run_ours(workspace, our_log, monkeypatch))
    legacy_seen, our_seen = read_log(legacy_log), read_log(our_log)
    if workspace.get("fail"):
        # The one difference (README, "Upgrading"): a failed step's own workspace writes
        # are not kept, so a retry starts from the last checkpoint; 3.3.0 kept them.
        for line in [*legacy_seen[-2:], legacy]:
            if line.get("what") != "task":
                line["workspace"].pop("second", None)
    assert our_seen == legacy_seen
    assert ours == normalise(legacy)


def test_a_worker_logs_each_step_in_django_db_queue_3_formats():
    job = Job.objects.create(name="chain")
    result = manage("worker", "--drain")
    output = result.stdout + result.stderr
    assert result.returncode == 0, output
    assert (
        f'Processing job: name="chain" queue="default" id={job.pk} state=PROCESSING '
        "next_task=tests.jobs.step_one" in output
    )
    assert (
        f'Updating job: name="chain" id={job.pk} state=READY next_task=tests.jobs.step_two'
        in output
    )
    assert f'Updating job: name="chain" id={job.pk} state=COMPLETE next_task=none' in output


@pytest.mark.parametrize("signum", [signal.SIGTERM, signal.SIGQUIT], ids=["SIGTERM", "SIGQUIT"])
def test_a_stopping_worker_hands_the_job_back_and_says_so(start_worker, settings, signum):
    """SIGQUIT stops a worker gracefully too, as in django-db-queue 3.x."""
    from tests.settings_guarantees import GUARANTEE_JOBS

    settings.JOBS = GUARANTEE_JOBS
    job = Job.objects.create(name="held")  # its step waits until the test releases it
    worker = start_worker(env={"DJANGO_SETTINGS_MODULE": "tests.settings_guarantees"})
    wait_for(lambda: executions(job) == ["held"], what="the worker to be inside the step")
    worker.signal(signum)
    wait_for(lambda: Job.objects.get(pk=job.pk).state == "STOPPING", what="the STOPPING mark")
    Execution.objects.create(job_id=str(job.pk), step="release", pid=0)
    assert worker.wait() == 0
    job.refresh_from_db()
    assert (job.state, job.next_task) == ("READY", "tests.jobs.record_b")
    assert f"Handing job id={job.pk} back at next_task=tests.jobs.record_b" in worker.log()


def test_jobs_with_placeholder_task_paths_can_be_created_and_fail_clearly_when_run():
    """3.x users' own test suites override JOBS with placeholder task names."""
    with override_settings(JOBS={"testjob": {"tasks": ["a"]}}):
        job = Job.objects.create(name="testjob")
        assert job.next_task == "a"
        assert list(Job.objects.to_process("default")) == [job]
        Worker("default")._process_job()
    job.refresh_from_db()
    assert job.state == "FAILED"
    assert "'a'" in job.error


def test_the_checks_report_every_problem_in_one_run():
    jobs = {
        "job": {"tasks": ["a.b"], "max_attempts": 0, "timeout": "5"},
        "other": {"tasks": []},
    }
    schedule = {"nightly": {"job": "missing", "cron": "0 3 * * *"}}
    with override_settings(JOBS=jobs, DBQ_SCHEDULE=schedule):
        errors = check_jobs() + check_settings()
    messages = "\n".join(error.msg for error in errors)
    assert "max_attempts" in messages and "timeout" in messages
    assert "JOBS['other'] needs a non-empty list of tasks" in messages
    assert "DBQ_SCHEDULE['nightly']" in messages


def test_drain_with_wait_retries_runs_retries_to_the_end():
    job = Job.objects.create(name="retried_later", workspace={"succeed_on": 2})
    assert manage("worker", "--drain").returncode == 0
    job.refresh_from_db()
    assert job.state == "READY" and job.run_after is not None  # waiting for its retry
    result = manage("worker", "--drain", "--wait-retries")
    assert result.returncode == 0, result.stderr
    job.refresh_from_db()
    assert job.state == "COMPLETE" and job.attempts == 2


def test_wait_retries_goes_with_drain():
    result = manage("worker", "--wait-retries")
    assert result.returncode != 0
    assert "--wait-retries goes with --drain" in result.stderr
