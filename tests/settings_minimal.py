"""A project with ``INSTALLED_APPS = ["django_dbq"]`` alone, on its own SQLite file.

Used by tests/test_upgrade.py in subprocesses: ``DBQ_MINIMAL_DB`` names the file.
"""

import os

SECRET_KEY = "django_dbq-minimal-not-secret"
USE_TZ = os.environ.get("DBQ_TEST_USE_TZ", "1") == "1"
TIME_ZONE = "UTC"
INSTALLED_APPS = ["django_dbq"]
DATABASES = {
    "default": {
        "ENGINE": "django.db.backends.sqlite3",
        "NAME": os.environ["DBQ_MINIMAL_DB"],
        "OPTIONS": {"timeout": 30},
    }
}
JOBS = {
    "noop": ["tests.jobs.noop"],
    "chain": ["tests.jobs.step_one", "tests.jobs.step_two", "tests.jobs.step_three"],
    "failing": ["tests.jobs.raise_error"],
}
