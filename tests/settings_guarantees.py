"""The test settings plus the jobs of the guarantee tests (tests/*/test_guarantees*.py)."""

from testsettings import *  # noqa: F403
from testsettings import JOBS as _BASE_JOBS

_TASKS = "tests.guarantee_tasks"

GUARANTEE_JOBS = {
    **_BASE_JOBS,
    "loses_connection": [
        "tests.jobs.record_a",
        f"{_TASKS}.lose_connection",
        "tests.jobs.record_b",
    ],
    "held": [f"{_TASKS}.hold", "tests.jobs.record_b"],
    "batch_and_keep": [f"{_TASKS}.batch_and_keep"],
    "resumes": [
        "tests.jobs.step_one",
        "tests.jobs.step_two",
        f"{_TASKS}.note_workspace",
        "tests.jobs.record_b",
    ],
    "queries_while_stopping": [
        "tests.jobs.record_a",
        f"{_TASKS}.query_after_stopping",
        "tests.jobs.record_b",
    ],
}
JOBS = GUARANTEE_JOBS
