"""``manage.py worker --concurrency N`` in processes mode: a supervisor and N worker children.

The tasks (tests/concurrency_tasks.py) record the pid of the process that ran each step,
and wait for states, never for times.
"""

import os
import re
import signal
import subprocess
import sys
from io import StringIO
from pathlib import Path

import pytest
from django.core.management import call_command
from django.core.management.base import CommandError
from django.db import connection

from django_dbq.models import Job
from tests.conftest import ROOT, WAIT_SECONDS, wait_for
from tests.helpers import manage, row, runs
from tests.models import Execution
from tests.settings_concurrency import CONCURRENCY_JOBS

pytestmark = [pytest.mark.processes, pytest.mark.django_db(transaction=True)]

SETTINGS = {"DJANGO_SETTINGS_MODULE": "tests.settings_concurrency"}
TASKS = "tests.concurrency_tasks"


@pytest.fixture(autouse=True)
def concurrency_jobs(settings):
    settings.JOBS = CONCURRENCY_JOBS


def children(worker) -> list[int]:
    """The worker processes the supervisor said it started, in order."""
    return [int(pid) for pid in re.findall(r"Started worker process (\d+)", worker.log())]


def alive(pid: int) -> bool:
    """Is ``pid`` a running process (a zombie left for its parent to reap is not)?"""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    stat = Path(f"/proc/{pid}/stat")
    try:
        return stat.read_text().rsplit(")", 1)[1].split()[0] != "Z"
    except (FileNotFoundError, IndexError):
        return not stat.parent.parent.exists()  # no /proc: trust kill()


def pids_of(step: str) -> list[int]:
    return list(Execution.objects.filter(step=step).order_by("id").values_list("pid", flat=True))


def done(*jobs: Job) -> bool:
    return all(row(job)["state"] == "COMPLETE" for job in jobs)


def test_three_processes_run_jobs_at_the_same_time(start_worker):
    """Each job returns only once three processes run one of them at the same time."""
    jobs = [Job.objects.create(name="rendezvous", workspace={"processes": 3}) for _ in range(6)]
    worker = start_worker("--concurrency", "3", env=SETTINGS)
    wait_for(lambda: done(*jobs), what="the rendezvous jobs to complete")
    started = children(worker)
    assert len(started) == 3, worker.log()[-3000:]
    assert worker.pid not in started
    assert set(pids_of("met")) == set(started)
    assert all(runs(job) == {"met": 1, "b": 1} for job in jobs)
    worker.signal(signal.SIGTERM)
    assert worker.wait() == 0, worker.log()[-3000:]
    assert worker.log().count("stopped") >= 3  # each child's "Worker ... stopped"
    assert not any(alive(pid) for pid in started)


def test_a_killed_childs_job_is_rescued_at_once_and_the_child_replaced(start_worker):
    """With a 300 s lease, only the supervisor's rescue can run the job again within the wait."""
    job = Job.objects.create(name="held_once")
    worker = start_worker("--concurrency", "2", env={**SETTINGS, "DBQ_LEASE_SECONDS": "300"})
    (victim,) = wait_for(lambda: pids_of("held"), what="a child to start the job")
    assert victim in children(worker)
    os.kill(victim, signal.SIGKILL)
    wait_for(lambda: done(job), what="the job to be rescued and run again")
    values = row(job)
    assert values["attempts"] == 2
    assert [error["type"] for error in values["errors"]] == ["WorkerLost"]
    first, second = pids_of("held")
    assert first == victim and second != victim
    replacement = wait_for(lambda: children(worker)[2:], what="a replacement child")[0]
    assert replacement not in (victim, worker.pid)
    assert alive(replacement)
    assert "Rescued 1 job(s) of worker" in worker.log()
    worker.signal(signal.SIGTERM)
    assert worker.wait() == 0, worker.log()[-3000:]


def test_sigterm_to_the_supervisor_lets_the_running_step_finish_and_checkpoint(start_worker):
    job = Job.objects.create(name="stops_gracefully")
    worker = start_worker("--concurrency", "2", env=SETTINGS)
    wait_for(lambda: runs(job)["started"] == 1, what="a child to start the step")
    started = children(worker)
    worker.signal(signal.SIGTERM)
    assert worker.wait() == 0, worker.log()[-3000:]
    values = row(job)
    # The step finished and its checkpoint was saved; the rest of the job waits, attempt given back.
    assert (values["state"], values["next_task"]) == ("READY", "tests.jobs.record_b")
    assert values["workspace"] == {"finished_step": True}
    assert (values["attempts"], values["errors"]) == (0, [])
    assert runs(job) == {"started": 1}
    assert "Stopped at once" not in worker.log()  # one signal is one request for each child
    assert len(started) == 2 and not any(alive(pid) for pid in started)


def test_a_second_sigterm_stops_the_children_at_once_and_hands_the_step_back(start_worker):
    job = Job.objects.create(name="held_once")
    worker = start_worker("--concurrency", "2", env=SETTINGS)
    wait_for(lambda: runs(job)["held"] == 1, what="a child to start the step")
    worker.signal(signal.SIGTERM)
    wait_for(lambda: row(job)["state"] == "STOPPING", what="the child to mark the job STOPPING")
    worker.signal(signal.SIGTERM)
    assert worker.wait() == 0, worker.log()[-3000:]
    assert worker.log().count("Stopped at once by a second signal") == 1  # the busy child
    values = row(job)
    assert (values["state"], values["next_task"]) == ("READY", f"{TASKS}.hold_first_attempt")
    assert (values["attempts"], values["errors"]) == (0, [])


def test_a_signal_to_every_process_counts_once_in_each_child(tmp_path):
    """Ctrl-C, Heroku and systemd signal the whole group: a child gets it directly too."""
    job = Job.objects.create(name="stops_gracefully")
    log = tmp_path / "worker.log"
    environment = {**os.environ, **SETTINGS, "PYTHONUNBUFFERED": "1"}
    environment["DBQ_TEST_DATABASE_NAME"] = str(connection.settings_dict["NAME"])
    with open(log, "w") as output:
        process = subprocess.Popen(
            [sys.executable, str(ROOT / "manage.py"), "worker", "--concurrency", "2"],
            cwd=ROOT,
            env=environment,
            stdout=output,
            stderr=subprocess.STDOUT,
            start_new_session=True,  # its own process group, to signal as a terminal would
        )
    try:
        wait_for(lambda: runs(job)["started"] == 1, what="a child to start the step")
        os.killpg(process.pid, signal.SIGINT)
        assert process.wait(WAIT_SECONDS) == 0, log.read_text()[-3000:]
    finally:
        if process.poll() is None:
            os.killpg(process.pid, signal.SIGKILL)
            process.wait()
    assert "Stopped at once" not in log.read_text()
    values = row(job)
    assert (values["state"], values["next_task"]) == ("READY", "tests.jobs.record_b")
    assert values["workspace"] == {"finished_step": True}


def test_a_stop_while_children_are_still_starting_exits_0(start_worker):
    """A stop request may reach a child before it has its handlers: it waits, and counts."""
    worker = start_worker("--concurrency", "6", env=SETTINGS)  # more forks, more chances
    wait_for(lambda: children(worker), what="the first child to start")
    worker.signal(signal.SIGTERM)
    assert worker.wait() == 0, worker.log()[-3000:]
    assert "killed by signal" not in worker.log()


def test_children_stop_when_the_supervisor_is_killed(start_worker):
    worker = start_worker("--concurrency", "2", env=SETTINGS)
    started = wait_for(lambda: children(worker)[1:] and children(worker), what="two children")
    worker.signal(signal.SIGKILL)
    worker.wait()
    wait_for(lambda: not any(alive(pid) for pid in started), what="the orphans to stop")


def test_drain_with_two_processes_exits_0_once_the_queue_is_empty():
    jobs = [Job.objects.create(name="recorded") for _ in range(5)]
    result = manage("worker", "--concurrency", "2", "--drain", env=SETTINGS)
    assert result.returncode == 0, result.stderr[-3000:]
    assert done(*jobs)
    assert all(runs(job) == {"a": 1, "b": 1, "c": 1} for job in jobs)
    assert len(re.findall(r"Started worker process \d+", result.stderr)) == 2
    empty = manage("worker", "--concurrency", "2", "--drain", env=SETTINGS)
    assert empty.returncode == 0, empty.stderr[-3000:]


def test_step_timeouts_end_steps_in_the_children():
    """Each child runs its worker in its main thread, where the timeout's alarm reaches it."""
    slow = [Job.objects.create(name="timed", workspace={"sleep": 120}) for _ in range(2)]
    result = manage("worker", "--concurrency", "2", "--drain", env=SETTINGS)
    assert result.returncode == 0, result.stderr[-3000:]
    for job in slow:
        values = row(job)
        assert values["state"] == "FAILED"
        assert values["errors"][0]["type"] == "StepTimeout"


def test_max_jobs_counts_per_child_and_exited_children_are_not_replaced():
    jobs = [Job.objects.create(name="noop") for _ in range(6)]
    result = manage("worker", "--concurrency", "2", "--max-jobs", "1", env=SETTINGS)
    assert result.returncode == 0, result.stderr[-3000:]
    assert len(re.findall(r"Started worker process \d+", result.stderr)) == 2
    assert sum(row(job)["state"] == "COMPLETE" for job in jobs) == 2


# -- the options ------------------------------------------------------------------------


def snapshot():
    return sorted(Job.objects.values_list("pk", "state", "worker_id"))


@pytest.mark.parametrize(
    "args, option",
    [
        (["--concurrency", "0"], "--concurrency"),
        (["--concurrency", "-2"], "--concurrency"),
        (["--concurrency", "many"], "--concurrency"),
        (["--concurrency", "2.5"], "--concurrency"),
        (["--mode", "fibers"], "--mode"),
        (["--concurrency", "2", "--mode", ""], "--mode"),
        (["--mode", "async", "--concurrency", "0"], "--concurrency"),
        (["--mode", "async", "--max-jobs", "-1"], "--max-jobs"),
    ],
)
def test_a_bad_concurrency_option_is_refused_and_nothing_starts(args, option):
    Job.objects.create(name="noop")
    before = snapshot()
    with pytest.raises(CommandError) as error:
        call_command("worker", *args, stdout=StringIO(), stderr=StringIO())
    assert option in str(error.value)
    assert "\n" not in str(error.value).strip()
    assert snapshot() == before


@pytest.mark.parametrize(
    "options, option",
    [
        ({"concurrency": "2"}, "--concurrency"),
        ({"concurrency": True}, "--concurrency"),
        ({"concurrency": 0}, "--concurrency"),
        ({"mode": "fibers"}, "--mode"),
    ],
)
def test_call_command_concurrency_values_are_checked_too(options, option):
    before = snapshot()
    with pytest.raises(CommandError, match=option):
        call_command("worker", stdout=StringIO(), stderr=StringIO(), **options)
    assert snapshot() == before


def test_threads_mode_dry_run_names_the_threads_and_starts_none():
    job = Job.objects.create(name="noop")
    out = StringIO()
    call_command(
        "worker",
        "--mode",
        "threads",
        "--concurrency",
        "4",
        "--dry-run",
        stdout=out,
        stderr=StringIO(),
    )
    assert out.getvalue().startswith('Starting job worker for queue "default" with rate limit')
    assert "in 4 threads" in out.getvalue()
    assert row(job)["state"] == "NEW"


def test_dry_run_names_the_processes_and_starts_none():
    job = Job.objects.create(name="noop")
    out = StringIO()
    call_command("worker", "--concurrency", "3", "--dry-run", stdout=out, stderr=StringIO())
    assert out.getvalue().startswith('Starting job worker for queue "default" with rate limit')
    assert "3 worker processes" in out.getvalue()
    assert row(job)["state"] == "NEW"


def test_concurrency_1_prints_exactly_the_single_workers_line():
    out = StringIO()
    call_command("worker", "--dry-run", stdout=out, stderr=StringIO())
    assert out.getvalue() == (
        'Starting job worker for queue "default" with rate limit of one job per 0 second(s)\n'
    )
