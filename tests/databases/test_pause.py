"""Pausing queues: the API, its checks, the commands, queue_depth, and what a worker claims."""

import json
import time
from io import StringIO

import pytest
from django.core.management import call_command
from django.core.management.base import CommandError
from django.db import connection
from django.test.utils import CaptureQueriesContext

from django_dbq import queues
from django_dbq.management.commands.worker import Worker
from django_dbq.models import Job
from django_dbq.queues import Queue

pytestmark = [pytest.mark.database, pytest.mark.django_db]

BAD_NAMES = ["", "q" * 101, None, 7, b"bytes"]


def run(*args, **options):
    out = StringIO()
    call_command(*args, stdout=out, stderr=StringIO(), **options)
    return out.getvalue()


# -- the API --------------------------------------------------------------------------


def test_pause_and_resume_change_the_paused_set():
    assert queues.paused_queues() == []
    assert queues.pause("emails") == ["emails"]
    assert queues.pause(["reports", "emails"]) == ["reports"]  # emails was paused already
    assert queues.paused_queues() == ["emails", "reports"]
    assert queues.paused_queues(["emails", "other"]) == ["emails"]
    assert queues.is_paused("emails") and not queues.is_paused("other")
    assert queues.resume(["emails", "other"]) == ["emails"]
    assert queues.paused_queues() == ["reports"]
    assert queues.resume("emails") == []


def test_a_queue_paused_again_keeps_the_time_it_was_first_paused():
    queues.pause("emails")
    first = Queue.objects.get(name="emails").paused_at
    queues.pause("emails")
    assert Queue.objects.get(name="emails").paused_at == first
    queues.resume("emails")
    assert Queue.objects.get(name="emails").paused_at is None
    queues.pause("emails")
    assert Queue.objects.get(name="emails").paused_at >= first
    assert queues.paused_since() == {"emails": Queue.objects.get(name="emails").paused_at}


def test_a_queue_without_jobs_may_be_paused():
    assert not Job.objects.filter(queue_name="later").exists()
    assert queues.pause("later") == ["later"]
    assert queues.paused_queues() == ["later"]


@pytest.mark.parametrize("bad", BAD_NAMES, ids=["empty", "too-long", "none", "int", "bytes"])
def test_a_bad_name_is_refused_and_nothing_changes(bad):
    with pytest.raises(ValueError, match="Queue names"):
        queues.pause(["fine", bad])
    queues.pause("kept")
    with pytest.raises(ValueError, match="Queue names"):
        queues.resume(["kept", bad])
    assert queues.paused_queues() == ["kept"]


def test_no_names_is_refused():
    with pytest.raises(ValueError, match="at least one"):
        queues.pause([])
    with pytest.raises(ValueError, match="at least one"):
        queues.resume(())


def test_names_are_exact():
    """MariaDB/MySQL compare with the column's collation: migration 0011 makes it binary."""
    queues.pause("emails")
    assert queues.pause(["Emails", "emails "]) == ["Emails", "emails "]
    assert queues.paused_queues() == sorted(["emails", "Emails", "emails "])
    assert queues.resume("EMAILS") == []
    assert queues.resume("Emails") == ["Emails"]
    assert queues.paused_queues() == sorted(["emails", "emails "])


def test_the_longest_name_fits():
    name = "q" * 99 + "é"
    assert queues.pause(name) == [name]
    assert queues.paused_queues() == [name]


# -- the commands ---------------------------------------------------------------------


def test_pause_queue_and_resume_queue_commands():
    assert run("pause_queue", "emails", "reports") == "emails paused\nreports paused\n"
    assert run("pause_queue", "emails") == "emails already paused\n"
    assert queues.paused_queues() == ["emails", "reports"]
    assert run("resume_queue", "emails", "other") == "emails resumed\nother was not paused\n"
    assert queues.paused_queues() == ["reports"]
    assert run("resume_queue", "reports") == "reports resumed\n"


def test_the_commands_are_quiet_at_verbosity_zero():
    assert run("pause_queue", "emails", verbosity=0) == ""
    assert queues.paused_queues() == ["emails"]
    assert run("resume_queue", "emails", "--verbosity", "0") == ""
    assert queues.paused_queues() == []


@pytest.mark.parametrize("command", ["pause_queue", "resume_queue"])
def test_the_commands_refuse_bad_names_and_change_nothing(command):
    queues.pause("kept")
    with pytest.raises(CommandError, match="queue_name must be 1 to 100 characters"):
        run(command, "fine", "q" * 101)
    with pytest.raises(CommandError, match="queue_name must be 1 to 100 characters"):
        run(command, "")
    with pytest.raises(CommandError):
        run(command)  # argparse: a name is required
    assert queues.paused_queues() == ["kept"]


def test_queue_depth_marks_paused_queues_and_leaves_the_others_as_they_were():
    Job.objects.create(name="noop")
    Job.objects.create(name="noop", queue_name="b")
    assert run("queue_depth", "default", "b") == "event=queue_depths default=1 b=1\n"
    assert json.loads(run("queue_depth", "default", "b", "--format", "json")) == {
        "queue_depths": {"default": 1, "b": 1}
    }
    queues.pause(["b", "empty", "not-shown"])
    assert (
        run("queue_depth", "default", "b", "empty")
        == "event=queue_depths default=1 b=1(paused) empty=0(paused)\n"
    )
    assert json.loads(run("queue_depth", "empty", "default", "b", "--format", "json")) == {
        "queue_depths": {"empty": 0, "default": 1, "b": 1},
        "paused": ["empty", "b"],
    }


# -- what a worker claims -------------------------------------------------------------


def make_jobs(*queue_names):
    return {name: Job.objects.create(name="noop", queue_name=name) for name in queue_names}


def pause_table_reads(queries):
    return [query for query in queries if Queue._meta.db_table in query["sql"]]


def test_a_worker_claims_only_from_queues_not_paused():
    jobs = make_jobs("a", "b")
    queues.pause("a")
    worker = Worker(["a", "b"], poll_interval=3600)
    claimed = worker.intake.claim(10)
    assert [job.pk for job in claimed] == [jobs["b"].pk]
    assert Job.objects.get(pk=jobs["a"].pk).state == "NEW"


def test_a_busy_worker_reads_the_pause_state_once_per_poll_interval():
    make_jobs("a", "b", "b", "b")
    worker = Worker(["a", "b"], poll_interval=3600)
    with CaptureQueriesContext(connection) as first:
        assert len(worker.intake.claim(1)) == 1
    assert len(pause_table_reads(first.captured_queries)) == 1
    queues.pause("b")  # not seen within the interval while claims find jobs
    with CaptureQueriesContext(connection) as busy:
        assert [job.queue_name for job in worker.intake.claim(1)] == ["b"]
        assert [job.queue_name for job in worker.intake.claim(1)] == ["b"]
    assert pause_table_reads(busy.captured_queries) == []


def test_after_an_empty_claim_the_worker_reads_the_pause_state_again():
    jobs = make_jobs("a")
    queues.pause("a")
    worker = Worker(["a", "b"], poll_interval=3600)
    assert worker.intake.claim(10) == []  # the worker would wait now
    queues.resume("a")  # on PostgreSQL this wakes it up; elsewhere its poll does
    assert [job.pk for job in worker.intake.claim(10)] == [jobs["a"].pk]


def test_a_worker_with_every_queue_paused_claims_nothing_and_touches_no_job():
    jobs = make_jobs("a", "b")
    queues.pause(["a", "b"])
    worker = Worker(["a", "b"], poll_interval=3600)
    with CaptureQueriesContext(connection) as captured:
        assert worker.intake.claim(10) == []
    assert all(Job._meta.db_table not in q["sql"] for q in captured.captured_queries)
    assert {job.state for job in Job.objects.filter(pk__in=[j.pk for j in jobs.values()])} == {
        "NEW"
    }


def test_a_prefetched_job_whose_queue_was_paused_is_handed_back_unstarted():
    make_jobs("a")
    make_jobs("a")
    worker = Worker("a", poll_interval=0.001)
    claimed = worker.intake.claim(10)
    assert len(claimed) == 2
    queues.pause("a")
    wait_past_interval(worker)
    assert worker.intake.next() is None
    first = Job.objects.get(pk=claimed[0].pk)
    assert (first.state, first.attempts, first.lease_token) == ("READY", 0, None)
    assert Job.objects.get(pk=claimed[1].pk).state == "PROCESSING"  # not looked at yet
    assert worker.intake.next() is None
    assert {job.state for job in Job.objects.filter(queue_name="a")} == {"READY"}


def wait_past_interval(worker):
    """Let the worker's last read of the pause state age past its (tiny) interval."""
    deadline = time.monotonic() + 5
    while not worker.intake.pauses.stale():
        assert time.monotonic() < deadline
        time.sleep(0.005)
