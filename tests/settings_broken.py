"""The test settings with a broken JOBS and DBQ_* configuration (system checks' tests)."""

from testsettings import *  # noqa: F403

JOBS = {
    **JOBS,  # noqa: F405
    "broken": ["tests.jobs.does_not_exist"],
    "misspelt": {"tasks": ["tests.jobs.noop"], "retries": 2},
}
DBQ_SCHEDULE = {"nightly": {"job": "noop", "cron": "every day"}}
DBQ_POLL_INTERVAL = 0
