"""``manage.py worker --metrics-port``: a real worker serves its counters over HTTP."""

import re
import signal
import socket
import urllib.request

import pytest

from django_dbq.models import Job
from tests.conftest import wait_for
from tests.helpers import row

pytestmark = [pytest.mark.processes, pytest.mark.django_db(transaction=True)]


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def scrape(port: int) -> str:
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=5) as response:
            return response.read().decode()
    except OSError:
        return ""


def sample(text: str, name: str, labels: str) -> float | None:
    found = re.search(rf"^{name}{{{re.escape(labels)}}} (\S+)$", text, re.MULTILINE)
    return float(found.group(1)) if found else None


@pytest.mark.parametrize("mode", ["single", "threads", "async"])
def test_a_worker_serves_the_counts_of_the_jobs_it_ran(start_worker, mode):
    port = free_port()
    jobs = [Job.objects.create(name="chain") for _ in range(3)] + [
        Job.objects.create(name="failing")
    ]
    args = () if mode == "single" else ("--mode", mode, "--concurrency", "2")
    worker = start_worker(*args, "--metrics-port", str(port))
    wait_for(
        lambda: all(row(job)["state"] in ("COMPLETE", "FAILED") for job in jobs), what="the jobs"
    )
    chain = 'name="chain",queue="default"'
    # The worker counts after the job's outcome is written: wait for the last count.
    wait_for(
        lambda: sample(scrape(port), "dbq_jobs_completed_total", chain) == 3, what="the counts"
    )
    text = scrape(port)
    assert sample(text, "dbq_jobs_started_total", chain) == 3
    assert sample(text, "dbq_jobs_failed_total", 'name="failing",queue="default"') == 1
    assert sample(text, "dbq_step_duration_seconds_count", chain) == 9  # three steps each
    # The worker says it is alive, and how many jobs it runs at once.
    slots = 1 if mode == "single" else 2
    assert sample(text, "dbq_worker_slots", f'mode="{mode}",queues="default"') == slots
    worker.signal(signal.SIGTERM)
    assert worker.wait() == 0, worker.log()[-3000:]


def test_a_port_already_taken_is_a_clear_error(start_worker):
    with socket.socket() as taken:
        taken.bind(("0.0.0.0", 0))
        taken.listen()
        port = taken.getsockname()[1]
        worker = start_worker("--metrics-port", str(port))
        assert worker.wait() == 1
    assert f"--metrics-port {port}: cannot listen" in worker.log()
