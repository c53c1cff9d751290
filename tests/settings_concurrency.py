"""The test settings plus the jobs of the ``worker --concurrency`` tests."""

from testsettings import *  # noqa: F403
from testsettings import JOBS as _BASE_JOBS

_TASKS = "tests.concurrency_tasks"

CONCURRENCY_JOBS = {
    **_BASE_JOBS,
    "rendezvous": [f"{_TASKS}.rendezvous", "tests.jobs.record_b"],
    "held_once": [f"{_TASKS}.hold_first_attempt", "tests.jobs.record_b"],
    "stops_gracefully": [f"{_TASKS}.finish_once_stopping", "tests.jobs.record_b"],
}
JOBS = CONCURRENCY_JOBS
