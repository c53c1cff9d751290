"""README "Guarantees" when workers are killed or signalled mid-step (real worker processes)."""

import signal
import time

import pytest
from django.db import connection

from django_dbq.models import Job
from tests.conftest import wait_for
from tests.processes.test_guarantees_workers import (
    SETTINGS,
    TASKS,
    finished,
    guarantee_jobs,
    row,
    runs,
    stop,
)

pytestmark = [pytest.mark.processes, pytest.mark.django_db(transaction=True)]

__all__ = ["guarantee_jobs"]  # the autouse fixture: JOBS as the workers see them


def test_a_killed_job_resumes_with_the_workspace_of_its_last_checkpoint(start_worker):
    job = Job.objects.create(name="resumes", workspace={"input": 1})
    # One live worker at a time: the short lease only decides how soon the rescue comes.
    env = {**SETTINGS, "DBQ_LEASE_SECONDS": "3"}
    first = start_worker(env=env)
    wait_for(lambda: runs(job)["noted"] == 1, what="the first worker to reach the third step")
    first.signal(signal.SIGKILL)
    first.wait()
    second = start_worker(env=env)
    wait_for(lambda: finished(job), what="the job to be rescued and finish")
    values = row(job)
    assert values["state"] == "COMPLETE", values["error"]
    # The rerun of the third step saw exactly what the second step's checkpoint saved:
    # nothing the killed run had added to the workspace since.
    checkpoint = {"input": 1, "one": 2, "two": 4}
    assert values["workspace"] == {**checkpoint, "seen": checkpoint}
    assert values["attempts"] == 2
    assert [error["type"] for error in values["errors"]] == ["WorkerLost"]
    assert values["errors"][0]["step"] == f"{TASKS}.note_workspace"
    assert runs(job) == {"noted": 1, "b": 1}
    stop(second)


def processlist_query(ident: int) -> str | None:
    with connection.cursor() as cursor:
        cursor.execute("SELECT INFO FROM information_schema.PROCESSLIST WHERE ID = %s", [ident])
        found = cursor.fetchone()
    return found[0] if found else None


def sleeping_connection() -> int | None:
    """The server id of the worker connection that is inside ``SELECT SLEEP``."""
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT ID FROM information_schema.PROCESSLIST "
            "WHERE DB = %s AND INFO LIKE 'SELECT SLEEP(%%'",
            [connection.settings_dict["NAME"]],
        )
        found = cursor.fetchone()
    return found[0] if found else None


def second_signal_during_a_query(start_worker) -> tuple[Job, object]:
    """A worker gets its second SIGTERM while its step sleeps in ``SELECT SLEEP(15)``.

    It must stay in the query until the query returns, then stop at once. Returns the
    job and the stopped worker.
    """
    if connection.vendor != "mysql":
        pytest.skip("about the MySQL/MariaDB driver; others interrupt queries at once")
    job = Job.objects.create(name="queries_while_stopping", workspace={"sleep": 15})
    # One live worker at a time: the short lease only decides how soon a rescue comes.
    worker = start_worker(env={**SETTINGS, "DBQ_LEASE_SECONDS": "4"})
    wait_for(lambda: runs(job)["started"] == 1, what="the worker to start the step")
    worker.signal(signal.SIGTERM)  # the first: the step goes on, and now sleeps in a query
    ident = wait_for(sleeping_connection, what="the step to sleep in the database")
    worker.signal(signal.SIGTERM)
    # Give a signal that could interrupt the query every chance to; the query holds it.
    # (A stall of the test could only shorten this look, never fail it: the query
    # lasts 15 s.)
    chance_over = time.monotonic() + 3
    while time.monotonic() < chance_over:
        assert worker.process.poll() is None, "the signal interrupted the query"
        time.sleep(0.1)
    assert processlist_query(ident).startswith("SELECT SLEEP(")
    assert worker.wait() == 0, worker.log()[-3000:]
    assert "Stopped at once by a second signal" in worker.log()
    assert "slept" not in row(job)["workspace"]  # interrupted as soon as the query returned
    assert runs(job) == {"a": 1, "started": 1, "querying": 1}
    return job, worker


def test_on_mysql_a_second_signal_takes_effect_when_the_query_returns(start_worker):
    """README, Signals: the driver blocks in C, so the signal waits for the query to end."""
    job, _ = second_signal_during_a_query(start_worker)
    # Handed back or (see below) rescued once its lease lapses: the step runs again.
    Job.objects.filter(pk=job.pk).update(workspace={"sleep": 0, "wait_for_stop": False})
    after = start_worker(env={**SETTINGS, "DBQ_LEASE_SECONDS": "4"})
    wait_for(lambda: finished(job), what="another worker to run the step again and finish")
    values = row(job)
    assert values["state"] == "COMPLETE", values["error"]
    assert runs(job) == {"a": 1, "started": 2, "querying": 2, "b": 1}
    stop(after)


def test_on_mysql_a_second_signal_during_a_query_hands_the_step_back(start_worker):
    """README, Signals: a second signal hands the interrupted step back, attempt given back."""
    job, worker = second_signal_during_a_query(start_worker)
    values = row(job)
    assert "Could not release" not in worker.log(), worker.log()[-2000:]
    assert (values["state"], values["next_task"]) == ("READY", f"{TASKS}.query_after_stopping")
    assert (values["attempts"], values["errors"]) == (0, [])
