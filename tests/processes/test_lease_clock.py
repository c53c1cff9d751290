"""Leases run on the database server's clock, not on each worker host's.

A worker whose clock is two minutes off (libfaketime, preloaded into a real
``manage.py worker`` subprocess) runs beside a worker on the true clock. Neither
may take back the other's healthy running job: with leases on each host's clock,
a fast host rescues everyone else's running jobs, and everyone rescues a slow
host's jobs as soon as it claims them.

CI needs the Debian package ``libfaketime`` (and ``faketime`` for trying it by hand).
"""

from __future__ import annotations

import collections
import datetime
import glob
import os
import subprocess
import sys
import time
import uuid

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext

from django_dbq import backends, leases
from django_dbq.models import Job
from tests.conftest import ROOT, wait_for
from tests.models import Execution

pytestmark = [
    pytest.mark.processes,
    pytest.mark.django_db(transaction=True),
    pytest.mark.skipif(
        connection.vendor == "sqlite",
        reason="SQLite: every process using the database runs on one host, on one clock",
    ),
]

SKEW_SECONDS = 120
# Long enough that nothing lapses on a loaded machine except through the skew.
LEASE = {"DBQ_LEASE_SECONDS": "30"}
# How long each job's middle step runs: several sweeps of the other worker (every
# 5 s with a 30 s lease) fall within it, with a wide margin for a slow machine.
HOLD_SECONDS = 45


def _libfaketime() -> str | None:
    if os.environ.get("DBQ_TEST_LIBFAKETIME"):
        return os.environ["DBQ_TEST_LIBFAKETIME"]
    # The multithreaded build: a worker runs a heartbeat and a maintenance thread.
    found = sorted(glob.glob("/usr/lib/*/faketime/libfaketimeMT.so.1"))
    found += sorted(glob.glob("/usr/lib/faketime/libfaketimeMT.so.1"))
    return found[0] if found else None


LIBFAKETIME = _libfaketime()
if LIBFAKETIME is None and os.environ.get("CI"):
    # CI installs it (.ci/run): a missing library must fail there, not skip quietly.
    raise RuntimeError("libfaketime is not installed (apt-get install libfaketime)")
needs_faketime = pytest.mark.skipif(
    LIBFAKETIME is None, reason="libfaketime is not installed (apt-get install libfaketime)"
)


def skewed_clock(seconds: int) -> dict[str, str]:
    """Environment that runs a process with its wall clock ``seconds`` off the true time."""
    return {
        "LD_PRELOAD": str(LIBFAKETIME),
        "FAKETIME": f"{seconds:+d}",
        # Only the wall clock is off, as on a host whose NTP is broken (and thread
        # waits, which run on the monotonic clock, keep working).
        "FAKETIME_DONT_FAKE_MONOTONIC": "1",
        # Works around libfaketime's broken time.sleep (see its docstring).
        "PYTHONPATH": os.pathsep.join(
            filter(None, [str(ROOT / "tests" / "faketime_site"), os.environ.get("PYTHONPATH")])
        ),
    }


def run_python(code: str, env: dict[str, str]) -> str:
    environment = {**os.environ, **env}
    environment["DBQ_TEST_DATABASE_NAME"] = str(connection.settings_dict["NAME"])
    result = subprocess.run(
        [sys.executable, str(ROOT / "manage.py"), "shell", "-c", code],
        cwd=ROOT,
        env=environment,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode == 0, result.stderr
    return result.stdout.strip().splitlines()[-1]  # after Django's shell banner, if any


@needs_faketime
@pytest.mark.parametrize("skew", [SKEW_SECONDS, -SKEW_SECONDS], ids=["fast", "slow"])
def test_a_process_with_a_wrong_clock_reads_the_database_servers(skew):
    code = (
        "import time; from django_dbq import leases; "
        "print(time.time(), leases.now('default').timestamp(), leases.deadline(30).timestamp())"
    )
    before = time.time()
    own, lease_now, lease_deadline = map(float, run_python(code, skewed_clock(skew)).split())
    after = time.time()
    # This test process runs on the database server's host, on the true clock.
    assert before + skew - 1 <= own <= after + skew + 1, "libfaketime did not shift the clock"
    assert before - 1 <= lease_now <= after + 1
    assert before + 29 <= lease_deadline <= after + 31


def test_the_server_clock_is_read_once_for_many_leases():
    """No round trip per claim: the reading is reused for ``REMEASURE_SECONDS``."""
    leases._readings.clear()  # as in a process that just started
    with CaptureQueriesContext(connection) as queries:
        stamps = [leases.deadline(30) for _ in range(50)]
    clock_query = backends.for_connection(connection).server_clock_sql
    assert [query["sql"] for query in queries] == [clock_query]
    assert stamps == sorted(stamps)
    assert abs(stamps[-1].timestamp() - time.time() - 30) < 5  # this host is the server's


def runs(job: Job) -> collections.Counter:
    return collections.Counter(
        Execution.objects.filter(job_id=str(job.pk)).values_list("step", flat=True)
    )


def row(job: Job) -> dict:
    return Job.objects.filter(pk=job.pk).values().get()


def lapsed_sentinel(token: uuid.UUID) -> Job:
    """A job with a long-lapsed lease under ``token``, in a queue no worker works.

    Sharing the token of a job a worker holds, it is rescued by any worker but that
    one (a worker never rescues the claims it holds): once it is back to READY, some
    other worker has swept for lapsed leases while that job ran, and left it alone.
    """
    return Job.objects.create(
        name="noop",
        queue_name="clock_sentinel",
        state="PROCESSING",
        lease_token=token,
        lease_expires_at=leases.now() - datetime.timedelta(days=1),
        worker_id="sentinel",
    )


def rescued_by(job: Job, *workers) -> list:
    return [worker for worker in workers if f"Rescued job {job.pk} (" in worker.log()]


@needs_faketime
@pytest.mark.parametrize("skew", [SKEW_SECONDS, -SKEW_SECONDS], ids=["fast", "slow"])
def test_a_worker_with_a_wrong_clock_and_a_true_one_rescue_none_of_each_others_jobs(
    start_worker, skew
):
    on_true = Job.objects.create(
        name="long", queue_name="clock_true", workspace={"sleep": HOLD_SECONDS}
    )
    on_skewed = Job.objects.create(
        name="long", queue_name="clock_skewed", workspace={"sleep": HOLD_SECONDS}
    )
    true_worker = start_worker("clock_true", env=LEASE)
    skewed_worker = start_worker("clock_skewed", env={**LEASE, **skewed_clock(skew)})
    tokens = {}
    for job in (on_true, on_skewed):
        wait_for(lambda j=job: runs(j)["a"], what=f"a worker to start job {job.pk}")
        values = row(job)
        assert values["state"] == "PROCESSING", f"job {job.pk} was taken back: {values}"
        assert values["lease_token"] is not None, f"job {job.pk} was taken back: {values}"
        tokens[job.pk] = values["lease_token"]

    # Each worker sweeps for lapsed leases at least once while the other holds its job.
    seen_by_skewed = lapsed_sentinel(tokens[on_true.pk])
    seen_by_true = lapsed_sentinel(tokens[on_skewed.pk])
    workers = (true_worker, skewed_worker)
    for sentinel in (seen_by_skewed, seen_by_true):
        # The log line follows the rescue's commit: wait for it, not for the row.
        wait_for(lambda s=sentinel: rescued_by(s, *workers), what="a sweep by the other worker")
    assert rescued_by(seen_by_skewed, *workers) == [skewed_worker]
    assert rescued_by(seen_by_true, *workers) == [true_worker]

    for job in (on_true, on_skewed):
        values = row(job)
        assert values["lease_token"] == tokens[job.pk], f"job {job.pk} was taken back"
        assert (values["state"], values["attempts"]) == ("PROCESSING", 1)
    for job in (on_true, on_skewed):
        wait_for(lambda j=job: row(j)["state"] == "COMPLETE", what=f"job {job.pk} to complete")
        assert runs(job) == {"a": 1, "sleep": 1, "b": 1}
        values = row(job)
        assert (values["attempts"], values["errors"]) == (1, [])
        assert rescued_by(job, *workers) == []
    assert "off the clock of database" in skewed_worker.log()  # it noticed its clock is wrong
