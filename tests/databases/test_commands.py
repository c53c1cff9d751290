"""The management commands: every option, the output formats, and every bad input."""

import datetime
import json
import uuid
from io import StringIO

import pytest
from django.core.management import call_command
from django.core.management.base import CommandError
from django.test import override_settings
from django.utils import timezone

from django_dbq.models import Job

pytestmark = [pytest.mark.database, pytest.mark.django_db]


def run(*args, **options):
    out = StringIO()
    call_command(*args, stdout=out, stderr=StringIO(), **options)
    return out.getvalue()


# -- create_job -------------------------------------------------------------------


def test_create_job_prints_the_new_jobs_id():
    output = run("create_job", "chain")
    job = Job.objects.get(pk=uuid.UUID(output.strip()))
    assert (job.name, job.queue_name, job.workspace, job.state) == ("chain", "default", {}, "NEW")
    assert job.next_task == "tests.jobs.step_one"


def test_create_job_with_every_option():
    output = run(
        "create_job",
        "noop",
        "--queue_name",
        "emails",
        "--workspace",
        '{"to": ["a@b.c"]}',
        "--priority",
        "-3",
        "--unique-key",
        "k1",
    )
    job = Job.objects.get(pk=output.strip())
    assert (job.queue_name, job.workspace, job.priority, job.unique_key) == (
        "emails",
        {"to": ["a@b.c"]},
        -3,
        "k1",
    )


def test_create_job_keyword_options_and_verbose_output():
    output = run("create_job", "noop", queue_name="q", workspace='{"a": 1}', verbosity=2)
    job = Job.objects.get()
    assert output.strip() == f"Created job noop on queue q: {job.pk}"
    assert job.workspace == {"a": 1}


@pytest.mark.parametrize(
    "args, message",
    [
        (["nope"], "No job named 'nope'"),
        (["noop", "--workspace", "{not json"], "not valid JSON"),
        (["noop", "--workspace", "[1, 2]"], "must be a JSON object"),
        (["noop", "--workspace", "3"], "must be a JSON object"),
        (["noop", "--workspace", '"text"'], "must be a JSON object"),
        (["noop", "--workspace", "null"], "must be a JSON object"),
        (["noop", "--workspace", '{"n": NaN}'], "JSON-serialisable"),
        (["noop", "--queue_name", ""], "--queue_name"),
        (["noop", "--queue_name", "q" * 101], "--queue_name"),
        (["noop", "--priority", "40000"], "--priority"),
        (["noop", "--priority", "high"], "invalid int value"),
        (["noop", "--unique-key", ""], "--unique-key"),
    ],
)
def test_create_job_refuses_bad_input_and_writes_nothing(args, message):
    with pytest.raises(CommandError, match=message):
        run("create_job", *args)
    assert not Job.objects.exists()


def test_create_job_accepts_a_dict_workspace_from_call_command():
    run("create_job", "noop", workspace={"a": [1]})
    assert Job.objects.get().workspace == {"a": [1]}


def test_create_job_with_a_malformed_jobs_setting_is_a_clear_error():
    message = "must be a list of task paths or a dict"
    with (
        override_settings(JOBS={"noop": "tests.jobs.noop"}),
        pytest.raises(CommandError, match=message),
    ):
        run("create_job", "noop")
    assert not Job.objects.exists()


def test_create_job_with_a_duplicate_unique_key_is_an_error():
    first = Job.objects.create(name="noop", unique_key="once")
    with pytest.raises(CommandError, match=f"already waiting or running \\(job {first.pk}\\)"):
        run("create_job", "noop", "--unique-key", "once")
    assert list(Job.objects.all()) == [first]


# -- delete_old_jobs ----------------------------------------------------------------


def make_old(state, hours):
    return Job.objects.create(
        name="noop", state=state, created=timezone.now() - datetime.timedelta(hours=hours)
    )


def test_delete_old_jobs_defaults_to_24_hours_and_prints_the_count():
    make_old("COMPLETE", 25)
    make_old("FAILED", 25)
    recent = make_old("COMPLETE", 23)
    waiting = make_old("NEW", 25)
    assert run("delete_old_jobs").strip() == "Deleted 2 job(s)"
    assert set(Job.objects.all()) == {recent, waiting}


def test_delete_old_jobs_hours_option_and_zero():
    make_old("COMPLETE", 3)
    make_old("STOPPING", 0.5)
    assert run("delete_old_jobs", "--hours", "2").strip() == "Deleted 1 job(s)"
    assert run("delete_old_jobs", hours=0).strip() == "Deleted 1 job(s)"
    assert run("delete_old_jobs", "--hours", "0").strip() == "Deleted 0 job(s)"


def test_delete_old_jobs_in_small_batches_deletes_them_all():
    for _ in range(5):
        make_old("COMPLETE", 30)
    assert run("delete_old_jobs", "--batch-size", "2").strip() == "Deleted 5 job(s)"
    assert not Job.objects.exists()


@pytest.mark.parametrize(
    "args, message",
    [
        (["--hours", "-1"], "at least 0"),
        (["--hours", "nan"], "at least 0"),
        (["--hours", "inf"], "at least 0"),
        (["--hours", "x"], "invalid float"),
        (["--batch-size", "0"], "at least 1"),
    ],
)
def test_delete_old_jobs_bad_input(args, message):
    make_old("COMPLETE", 30)
    with pytest.raises(CommandError, match=message):
        run("delete_old_jobs", *args)
    assert Job.objects.count() == 1


# -- queue_depth ---------------------------------------------------------------------


def fill_queues():
    Job.objects.create(name="noop")
    Job.objects.create(name="noop", state="READY")
    Job.objects.create(name="noop", state="PROCESSING")
    Job.objects.create(name="noop", queue_name="b")
    Job.objects.create(
        name="noop", queue_name="b", run_after=timezone.now() + datetime.timedelta(hours=1)
    )


def test_queue_depth_prints_the_default_queue():
    fill_queues()
    assert run("queue_depth") == "event=queue_depths default=2\n"


def test_queue_depth_prints_queues_in_the_order_given_with_zero_for_empty_ones():
    fill_queues()
    assert (
        run("queue_depth", "b", "empty", "default") == "event=queue_depths b=2 empty=0 default=2\n"
    )


def test_queue_depth_exclude_future_jobs_flag_takes_no_value():
    fill_queues()
    assert (
        run("queue_depth", "default", "b", "--exclude_future_jobs")
        == "event=queue_depths default=2 b=1\n"
    )
    assert run("queue_depth", "b", "--exclude-future-jobs") == "event=queue_depths b=1\n"


def test_queue_depth_keyword_form_used_by_3x_callers():
    fill_queues()
    output = run("queue_depth", queue_name=("default", "b"), exclude_future_jobs=True)
    assert output == "event=queue_depths default=2 b=1\n"
    assert run("queue_depth", queue_name="b") == "event=queue_depths b=2\n"


def test_queue_depth_json_format():
    fill_queues()
    output = run("queue_depth", "b", "default", "none", "--format", "json")
    assert json.loads(output) == {"queue_depths": {"b": 2, "default": 2, "none": 0}}
    assert list(json.loads(output)["queue_depths"]) == ["b", "default", "none"]
    assert json.loads(run("queue_depth", "b", format="json", exclude_future_jobs=True)) == {
        "queue_depths": {"b": 1}
    }


def test_queue_depth_refuses_an_unknown_format():
    with pytest.raises(CommandError, match="invalid choice"):
        run("queue_depth", "--format", "yaml")


# -- worker ---------------------------------------------------------------------------


def test_worker_dry_run_prints_the_start_line_and_runs_nothing():
    job = Job.objects.create(name="noop", queue_name="q")
    output = run("worker", queue_name="q", dry_run=True)
    assert output.startswith('Starting job worker for queue "q"')
    assert Job.objects.get(pk=job.pk).state == "NEW"


def test_worker_dry_run_with_several_queues_and_a_rate_limit():
    output = run("worker", "a", "b", "--rate_limit", "2", "--dry-run")
    assert output.startswith('Starting job worker for queue "a", "b"')
    assert "2.0 second" in output


def test_worker_refuses_a_negative_rate_limit():
    with pytest.raises(CommandError, match="rate_limit"):
        run("worker", "--rate_limit", "-1", "--dry-run")


# -- cancel_job and retry_job -------------------------------------------------------------


def test_cancel_job_cancels_waiting_jobs_and_reports_finished_ones():
    one, two = Job.objects.create(name="noop"), Job.objects.create(name="noop", state="READY")
    done = Job.objects.create(name="noop", state="COMPLETE")
    output = run("cancel_job", str(one.pk), str(two.pk), str(done.pk))
    assert Job.objects.get(pk=one.pk).state == "CANCELLED"
    assert Job.objects.get(pk=two.pk).state == "CANCELLED"
    assert Job.objects.get(pk=done.pk).state == "COMPLETE"
    assert f"{one.pk} cancelled (was NEW)" in output
    assert f"{done.pk} not cancelled: already COMPLETE" in output


def test_cancel_job_on_a_running_job_requests_cancellation():
    job = Job.objects.create(name="noop", state="PROCESSING")
    output = run("cancel_job", str(job.pk))
    job.refresh_from_db()
    assert job.state == "PROCESSING" and job.cancel_requested
    assert "cancel requested" in output


@pytest.mark.parametrize("bad", ["nope", str(uuid.UUID(int=7))])
def test_cancel_job_with_an_unknown_id_changes_nothing(bad):
    job = Job.objects.create(name="noop")
    with pytest.raises(CommandError, match="not a job id|No job with id"):
        run("cancel_job", str(job.pk), bad)
    assert Job.objects.get(pk=job.pk).state == "NEW"


def test_retry_job_from_the_failed_step_and_from_a_chosen_step():
    failed = Job.objects.create(name="chain", state="FAILED", attempts=1)
    Job.objects.filter(pk=failed.pk).update(next_task="tests.jobs.step_two")
    output = run("retry_job", str(failed.pk))
    failed.refresh_from_db()
    assert (failed.state, failed.next_task, failed.attempts) == ("READY", "tests.jobs.step_two", 0)
    assert output.strip() == f"{failed.pk} queued again from tests.jobs.step_two"
    Job.objects.filter(pk=failed.pk).update(state="FAILED")
    run("retry_job", str(failed.pk), "--from-step", "tests.jobs.step_one")
    assert Job.objects.get(pk=failed.pk).next_task == "tests.jobs.step_one"


@pytest.mark.parametrize(
    "case, message",
    [
        ("bad_step", "has no step 'tests.jobs.nope'"),
        ("not_failed", "only FAILED or CANCELLED"),
        ("unknown_id", "No job with id"),
        ("bad_id", "not a job id"),
    ],
)
def test_retry_job_refuses_bad_input_and_changes_nothing(case, message):
    failed = Job.objects.create(name="chain", state="FAILED")
    waiting = Job.objects.create(name="chain")
    ids = {
        "bad_step": [str(failed.pk), "--from-step", "tests.jobs.nope"],
        "not_failed": [str(failed.pk), str(waiting.pk)],
        "unknown_id": [str(failed.pk), str(uuid.UUID(int=9))],
        "bad_id": [str(failed.pk), "xyz"],
    }[case]
    with pytest.raises(CommandError, match=message):
        run("retry_job", *ids)
    assert Job.objects.get(pk=failed.pk).state == "FAILED"
    assert Job.objects.get(pk=waiting.pk).state == "NEW"
