"""Issue #10, "Drop-in means drop-in": the commands' options, verbosity and progress output.

- every bad option value is a one-line CommandError naming the option, and writes nothing;
- ``worker --verbosity`` sets what ``django_dbq`` logs, and shows it when LOGGING does not;
- ``delete_old_jobs -v 2`` prints a line per batch;
- ``queue_depth --watch N`` prints the depths every N seconds until SIGINT/SIGTERM.
"""

import datetime
import logging
import os
import signal
import subprocess
import sys
from io import StringIO

import pytest
from django.core.management import call_command
from django.core.management.base import CommandError
from django.db import connection
from django.utils import timezone

from django_dbq.models import Job
from tests.conftest import ROOT, wait_for
from tests.helpers import manage

pytestmark = [pytest.mark.processes, pytest.mark.django_line, pytest.mark.django_db]

NO_LOGGING = "tests.settings_no_logging"


def run(*args, **options):
    out = StringIO()
    call_command(*args, stdout=out, stderr=StringIO(), **options)
    return out.getvalue()


def make_old(state="COMPLETE", hours=30):
    return Job.objects.create(
        name="chain", state=state, created=timezone.now() - datetime.timedelta(hours=hours)
    )


def snapshot():
    return sorted(Job.objects.values_list("pk", "state", "next_task", "queue_name"))


# -- 1. bad values name the option -----------------------------------------------------

BAD_ARGUMENTS = [
    ("worker", ["--rate_limit", "-1"], "--rate_limit"),
    ("worker", ["--rate-limit", "nan"], "--rate_limit"),
    ("worker", ["--rate_limit", "inf"], "--rate_limit"),
    ("worker", ["--rate_limit", "soon"], "--rate_limit"),
    ("worker", ["--max-jobs", "0"], "--max-jobs"),
    ("worker", ["--max_jobs", "-2"], "--max-jobs"),
    ("worker", ["--max-jobs", "many"], "--max-jobs"),
    ("worker", ["--metrics-port", "0"], "--metrics-port"),
    ("worker", ["--metrics-port", "70000"], "--metrics-port"),
    ("worker", ["--metrics-port", "http"], "--metrics-port"),
    ("worker", ["--metrics-port", "9100", "--concurrency", "2"], "--metrics-port"),
    ("worker", ["--metrics-port", "9100", "--mode", "processes"], "--metrics-port"),
    ("worker", [""], "queue_name"),
    ("worker", ["default", "q" * 101], "queue_name"),
    ("create_job", ["nope"], "job_name"),
    ("create_job", ["noop", "--queue_name", ""], "--queue_name"),
    ("create_job", ["noop", "--workspace", "{oops"], "--workspace"),
    ("create_job", ["noop", "--workspace", '{"n": NaN}'], "--workspace"),
    ("create_job", ["noop", "--priority", "-40000"], "--priority"),
    ("create_job", ["noop", "--priority", "top"], "--priority"),
    ("create_job", ["noop", "--unique-key", ""], "--unique-key"),
    ("create_job", ["noop", "--unique-key", "k" * 201], "--unique-key"),
    ("delete_old_jobs", ["--hours", "-1"], "--hours"),
    ("delete_old_jobs", ["--hours", "nan"], "--hours"),
    ("delete_old_jobs", ["--hours", "old"], "--hours"),
    ("delete_old_jobs", ["--batch-size", "0"], "--batch-size"),
    ("delete_old_jobs", ["--batch_size", "-5"], "--batch-size"),
    ("delete_old_jobs", ["--batch-size", "big"], "--batch-size"),
    ("queue_depth", [""], "queue_name"),
    ("queue_depth", ["default", "q" * 101], "queue_name"),
    ("queue_depth", ["--format", "xml"], "--format"),
    ("queue_depth", ["--watch", "0"], "--watch"),
    ("queue_depth", ["--watch", "-1"], "--watch"),
    ("queue_depth", ["--watch", "nan"], "--watch"),
    ("queue_depth", ["--watch", "inf"], "--watch"),
    ("queue_depth", ["--watch", "often"], "--watch"),
    ("cancel_job", ["not-a-uuid"], "job_id"),
    ("retry_job", ["not-a-uuid"], "job_id"),
    ("retry_job", ["FAILED_JOB", "--from-step", "tests.jobs.nope"], "--from-step"),
    ("retry_job", ["FAILED_JOB", "--from-step", ""], "--from-step"),
]


@pytest.mark.parametrize("command, args, option", BAD_ARGUMENTS)
def test_a_bad_option_value_is_a_one_line_error_naming_the_option(command, args, option):
    failed = Job.objects.create(name="chain", state="FAILED")
    make_old()
    Job.objects.create(name="noop")
    before = snapshot()
    args = [str(failed.pk) if arg == "FAILED_JOB" else arg for arg in args]
    if command == "worker":
        args.append("--dry-run")  # were the value taken, nothing would run
    with pytest.raises(CommandError) as error:
        run(command, *args)
    message = str(error.value)
    assert option in message
    assert "\n" not in message.strip()
    assert snapshot() == before


@pytest.mark.parametrize(
    "command, options, option",
    [
        ("worker", {"rate_limit": -1}, "--rate_limit"),
        ("worker", {"rate_limit": "1"}, "--rate_limit"),
        ("worker", {"max_jobs": "3"}, "--max-jobs"),
        ("worker", {"max_jobs": True}, "--max-jobs"),
        ("worker", {"queue_name": ""}, "queue_name"),
        ("create_job", {"priority": "high"}, "--priority"),
        ("create_job", {"queue_name": None}, "--queue_name"),
        ("create_job", {"workspace": 3}, "--workspace"),
        ("delete_old_jobs", {"hours": "x"}, "--hours"),
        ("delete_old_jobs", {"batch_size": 1.5}, "--batch-size"),
        ("queue_depth", {"format": "yaml"}, "--format"),
        ("queue_depth", {"watch": "1"}, "--watch"),
        ("queue_depth", {"watch": 0}, "--watch"),
    ],
)
def test_call_command_keyword_values_are_checked_too(command, options, option):
    """call_command(name=value) skips argparse: the commands check the value themselves."""
    make_old()
    before = snapshot()
    args = ["noop"] if command == "create_job" else []
    if command == "worker":
        options["dry_run"] = True
    with pytest.raises(CommandError, match=option):
        run(command, *args, **options)
    assert snapshot() == before


@pytest.mark.django_db(transaction=True)
@pytest.mark.parametrize(
    "args, option",
    [
        (["worker", "--rate_limit", "-1"], "--rate_limit"),
        (["worker", "--max-jobs", "0"], "--max-jobs"),
        (["delete_old_jobs", "--batch-size", "0"], "--batch-size"),
        (["queue_depth", "--watch", "-2"], "--watch"),
    ],
)
def test_manage_py_with_a_bad_option_exits_1_with_one_line_naming_it(args, option):
    old = make_old()
    queued = Job.objects.create(name="noop")
    result = manage(*args)
    assert result.returncode == 1, result.stderr
    assert result.stdout == ""
    assert result.stderr.startswith("CommandError: ") and option in result.stderr, result.stderr
    assert len(result.stderr.strip().splitlines()) == 1, result.stderr
    assert sorted(Job.objects.values_list("pk", "state")) == sorted(
        [(old.pk, "COMPLETE"), (queued.pk, "NEW")]
    )


# -- 2. worker --verbosity ---------------------------------------------------------------

STOPPED = "INFO Worker "  # "<time> INFO [django_dbq.worker ]Worker <id> stopped"
SETTINGS_LINE = "claims up to"  # the worker command's DEBUG line about its configuration


def drain(*args, settings=None, env=None):
    """``manage.py worker --drain`` over one queued job; the finished process."""
    job = Job.objects.create(name="noop")
    result = manage("worker", "--drain", *args, settings=settings, env=env)
    assert result.returncode == 0, result.stderr
    assert Job.objects.get(pk=job.pk).state == "COMPLETE"
    return result


def lines_with(text, output):
    return [line for line in output.splitlines() if text in line]


@pytest.mark.django_db(transaction=True)
def test_worker_without_logging_settings_says_what_it_does_on_stderr():
    result = drain(settings=NO_LOGGING)
    assert len(lines_with(STOPPED, result.stderr)) == 1, result.stderr
    assert lines_with(" stopped", result.stderr)[0].startswith("[")  # the command's format
    assert SETTINGS_LINE not in result.stderr
    assert "INFO" not in result.stdout


@pytest.mark.django_db(transaction=True)
def test_worker_without_logging_settings_at_verbosity_2_shows_debug_detail():
    result = drain("--verbosity", "2", settings=NO_LOGGING)
    assert len(lines_with(SETTINGS_LINE, result.stderr)) == 1, result.stderr
    assert SETTINGS_LINE in result.stderr
    assert len(lines_with(STOPPED, result.stderr)) == 1, result.stderr


@pytest.mark.django_db(transaction=True)
def test_worker_without_logging_settings_at_verbosity_0_prints_no_log_lines():
    result = drain("--verbosity", "0", settings=NO_LOGGING)
    assert result.stderr == ""


@pytest.mark.django_db(transaction=True)
@pytest.mark.parametrize(
    "verbosity, info_lines, debug_lines", [("1", 1, 0), ("2", 1, 1), ("0", 0, 0)]
)
def test_worker_with_the_projects_handler_prints_each_line_once(verbosity, info_lines, debug_lines):
    """testsettings.LOGGING gives django_dbq a console handler (level INFO): no second one."""
    result = drain("--verbosity", verbosity)
    assert len(lines_with(" INFO django_dbq.worker.loop Worker ", result.stderr)) == info_lines
    assert len(lines_with(SETTINGS_LINE, result.stderr)) == debug_lines, result.stderr
    assert not result.stderr.count("[20"), result.stderr  # the command's own handler is unused


@pytest.mark.django_db(transaction=True)
def test_worker_at_the_default_verbosity_keeps_the_level_the_project_chose():
    result = drain(env={"DBQ_LOG_LEVEL": "WARNING"})
    assert result.stderr == ""
    result = drain("-v", "2", env={"DBQ_LOG_LEVEL": "WARNING"})
    assert SETTINGS_LINE in result.stderr  # a flag typed for one run wins


def test_worker_command_restores_the_library_logger_after_it_ran():
    library = logging.getLogger("django_dbq")
    level, handlers = library.level, list(library.handlers)
    run("worker", "--dry-run", verbosity=2)
    run("worker", "--dry-run", verbosity=0)
    assert (library.level, library.handlers) == (level, handlers)


# -- 3. delete_old_jobs progress -----------------------------------------------------------


def test_delete_old_calls_progress_after_each_batch():
    for _ in range(5):
        make_old()
    batches = []
    assert Job.objects.delete_old(hours=1, batch_size=2, progress=batches.append) == 5
    assert batches == [2, 2, 1]


def test_delete_old_jobs_at_verbosity_2_prints_a_line_per_batch():
    for _ in range(5):
        make_old()
    kept = Job.objects.create(name="noop")
    output = run("delete_old_jobs", "--batch-size", "2", "--verbosity", "2")
    assert output.splitlines() == [
        "Deleted 2 jobs (2 so far)",
        "Deleted 2 jobs (4 so far)",
        "Deleted 1 job (5 so far)",
        "Deleted 5 job(s)",
    ]
    assert list(Job.objects.all()) == [kept]


def test_delete_old_jobs_at_the_default_verbosity_prints_the_total_only():
    for _ in range(3):
        make_old()
    assert run("delete_old_jobs", "--batch-size", "1") == "Deleted 3 job(s)\n"


# -- 4. queue_depth --watch ------------------------------------------------------------------


class Watch:
    """``manage.py queue_depth ... --watch N`` in a subprocess, its output in files."""

    def __init__(self, tmp_path, *args):
        environment = dict(os.environ)
        environment["DBQ_TEST_DATABASE_NAME"] = str(connection.settings_dict["NAME"])
        self.out, self.err = tmp_path / "out", tmp_path / "err"
        with open(self.out, "w") as out, open(self.err, "w") as err:
            self.process = subprocess.Popen(
                [sys.executable, str(ROOT / "manage.py"), "queue_depth", *args],
                cwd=ROOT,
                env=environment,
                stdout=out,
                stderr=err,
            )

    def lines(self):
        return self.out.read_text().splitlines()

    def stop(self, signum):
        self.process.send_signal(signum)
        try:
            return self.process.wait(60)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait(10)
            pytest.fail("queue_depth --watch did not exit on a signal")


@pytest.fixture
def watch(tmp_path):
    watches = []

    def start(*args):
        watches.append(Watch(tmp_path, *args))
        return watches[-1]

    yield start
    for started in watches:
        if started.process.poll() is None:
            started.process.kill()
            started.process.wait(10)


@pytest.mark.django_db(transaction=True)
@pytest.mark.parametrize("signum", [signal.SIGINT, signal.SIGTERM])
def test_queue_depth_watch_prints_until_interrupted_then_exits_0_quietly(watch, signum):
    Job.objects.create(name="noop", queue_name="b")
    watching = watch("default", "b", "--watch", "0.1")
    wait_for(lambda: len(watching.lines()) >= 2, what="two rounds of depths")
    assert set(watching.lines()) == {"event=queue_depths default=0 b=1"}
    Job.objects.create(name="noop")  # later rounds read the table again
    wait_for(lambda: "event=queue_depths default=1 b=1" in watching.lines(), what="the new depth")
    assert watching.stop(signum) == 0
    assert watching.err.read_text() == ""


@pytest.mark.django_db(transaction=True)
def test_queue_depth_watch_in_json_prints_one_object_per_line(watch):
    watching = watch("--watch", "0.1", "--format", "json")
    wait_for(lambda: len(watching.lines()) >= 2, what="two rounds of depths")
    assert watching.stop(signal.SIGINT) == 0
    assert {line for line in watching.lines() if line} == {'{"queue_depths": {"default": 0}}'}
