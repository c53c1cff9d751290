"""Rescue across processes: the prefetched jobs of a killed claimer run once, on another worker."""

import os
import signal
import subprocess
import sys

import pytest
from django.db import connection

from django_dbq.models import Job
from tests.conftest import ROOT, wait_for
from tests.models import Execution

pytestmark = [pytest.mark.processes, pytest.mark.django_db(transaction=True)]


CLAIM_AND_HANG = """
import os, sys, time
sys.path.insert(0, os.getcwd())
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "testsettings")
import django
django.setup()
from django_dbq import leases
from django_dbq.engine import Claimer
from django_dbq.models import Job
jobs = Claimer(Job.objects.using("default"), ["default"], "doomed", 2.0).claim(int(sys.argv[1]))
print("claimed", len(jobs), flush=True)
time.sleep(600)
"""


def test_prefetched_jobs_of_a_killed_worker_are_rescued_and_run_once(start_worker):
    Job.objects.bulk_create([Job(name="recorded") for _ in range(8)])
    environment = dict(os.environ, DBQ_TEST_DATABASE_NAME=str(connection.settings_dict["NAME"]))
    doomed = subprocess.Popen(
        [sys.executable, "-c", CLAIM_AND_HANG, "5"],
        cwd=ROOT,
        env=environment,
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert doomed.stdout.readline().strip() == "claimed 5"
    finally:
        doomed.kill()
        doomed.wait(30)
    assert Job.objects.filter(state="PROCESSING", worker_id="doomed").count() == 5

    worker = start_worker(env={"DBQ_LEASE_SECONDS": "2"})
    wait_for(lambda: Job.objects.filter(state="COMPLETE").count() == 8, what="all jobs")
    counts = list(Execution.objects.values_list("job_id", "step"))
    assert len(counts) == len(set(counts)) == 24  # each step of each job once
    rescued = Job.objects.filter(attempts=2)
    assert rescued.count() == 5
    assert all(job.errors[-1]["type"] == "WorkerLost" for job in rescued)
    worker.signal(signal.SIGTERM)
    assert worker.wait() == 0
