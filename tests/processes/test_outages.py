"""Database restarts under running workers (PostgreSQL and MariaDB/MySQL only).

Each test restarts the server the suite runs against and, whatever happens,
makes sure it answers again before it ends. They are short, since other test
runs on the machine see the restart too.
"""

import signal
import subprocess
import time

import pytest
from django.db import connection

from django_dbq.models import Job
from tests.conftest import wait_for
from tests.models import Execution

pytestmark = [pytest.mark.processes, pytest.mark.django_db(transaction=True)]

# Longer than a restart takes: workers keep their jobs through it, nothing is rescued.
ENV = {"DBQ_LEASE_SECONDS": "20", "DBQ_POLL_INTERVAL": "0.2"}
SERVER_WAIT = 120


def _run(*command: str) -> subprocess.CompletedProcess:
    return subprocess.run(command, capture_output=True, text=True, timeout=SERVER_WAIT)


def _answers() -> bool:
    if connection.vendor == "postgresql":
        probe = ("pg_isready", "-h", "127.0.0.1", "-p", "5432", "-U", "postgres")
    else:
        probe = ("mysqladmin", "-h127.0.0.1", "-uroot", "--connect-timeout=2", "ping")
    try:
        return _run(*probe).returncode == 0
    except (OSError, subprocess.TimeoutExpired):
        return False


def _start() -> None:
    if connection.vendor == "postgresql":
        _run("pg_ctlcluster", "--skip-systemctl-redirect", "15", "main", "start")
    else:
        _run(
            "start-stop-daemon", "--start", "--oknodo", "--background",
            "--exec", "/usr/sbin/mariadbd",
        )  # fmt: skip


def _wait_until_up() -> None:
    deadline = time.monotonic() + SERVER_WAIT
    while not _answers():
        if time.monotonic() > deadline:
            pytest.fail("the database server did not come back")
        _start()
        time.sleep(0.5)
    connection.close()  # the test's own connection died with the server


def _restart() -> None:
    if connection.vendor == "postgresql":
        result = _run("pg_ctlcluster", "15", "main", "restart")
        if result.returncode != 0:
            _run("pg_ctlcluster", "--skip-systemctl-redirect", "15", "main", "restart")
    else:
        _run("mysqladmin", "-h127.0.0.1", "-uroot", "shutdown")
        deadline = time.monotonic() + SERVER_WAIT
        while _answers() and time.monotonic() < deadline:
            time.sleep(0.2)
        time.sleep(0.5)  # down for a moment: workers see refused connections
        _start()
    _wait_until_up()


@pytest.fixture
def restart_database():
    if connection.vendor not in ("postgresql", "mysql"):
        pytest.skip("restarts a database server: PostgreSQL and MariaDB/MySQL only")
    try:
        yield _restart
    finally:
        _wait_until_up()


def _workers_live_on(workers) -> None:
    # The restart was seen (so the test exercised it), and survived.
    assert any("database" in worker.log().lower() for worker in workers)
    for worker in workers:
        assert worker.process.poll() is None, worker.log()[-3000:]
        worker.signal(signal.SIGTERM)
        assert worker.wait() == 0, worker.log()[-3000:]


def test_idle_workers_live_through_a_restart(restart_database, start_worker):
    workers = [start_worker(env=ENV) for _ in range(2)]
    warm_up = Job.objects.create(name="noop")
    wait_for(lambda: Job.objects.get(pk=warm_up.pk).state == "COMPLETE", what="a warm-up job")
    restart_database()
    Job.objects.bulk_create([Job(name="recorded") for _ in range(20)])
    wait_for(
        lambda: Job.objects.filter(state="COMPLETE").count() == 21,
        what="the jobs enqueued after the restart",
    )
    _workers_live_on(workers)


def test_busy_workers_live_through_a_restart_and_finish_every_job(restart_database, start_worker):
    Job.objects.bulk_create(
        [Job(name="slow", workspace={"sleep": 0.05}) for _ in range(60)]
        + [Job(name="recorded") for _ in range(200)]
    )
    workers = [start_worker(env=ENV) for _ in range(2)]
    wait_for(
        lambda: Job.objects.filter(state="COMPLETE").count() >= 10, what="work to be under way"
    )
    restart_database()
    wait_for(
        lambda: Job.objects.filter(state="COMPLETE").count() == 260, what="every job to complete"
    )
    # Every step ran; a step cut off by the restart may have run twice.
    steps = set(Execution.objects.values_list("job_id", "step"))
    for job_id, name in Job.objects.values_list("pk", "name"):
        expected = {"sleep", "a", "b"} if name == "slow" else {"a", "b", "c"}
        assert {step for (id_, step) in steps if id_ == str(job_id)} == expected
    _workers_live_on(workers)


def test_a_worker_started_while_the_database_is_down_waits_for_it(start_worker):
    if connection.vendor not in ("postgresql", "mysql"):
        pytest.skip("a database server that can be unreachable: PostgreSQL and MariaDB/MySQL only")
    # Nothing listens on port 9: the worker must wait, not crash, and still stop cleanly.
    scheme = "postgres" if connection.vendor == "postgresql" else "mysql"
    user = connection.settings_dict["USER"]
    worker = start_worker(env={"DATABASE_URL": f"{scheme}://{user}@127.0.0.1:9/test"})
    wait_for(lambda: "Waiting for the database" in worker.log(), what="the worker to wait")
    assert worker.process.poll() is None
    worker.signal(signal.SIGTERM)
    assert worker.wait() == 0, worker.log()[-2000:]
    assert "Traceback" not in worker.log()
