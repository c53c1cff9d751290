"""The test settings plus a job whose task module is missing (only a worker needs it)."""

from testsettings import *  # noqa: F403

JOBS = {**JOBS, "broken": ["tests.missing_module.task"]}  # noqa: F405
