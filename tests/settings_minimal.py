"""A project with ``INSTALLED_APPS = ["django_dbq"]`` alone, on a scratch database.

Used by tests/processes/test_upgrade.py in subprocesses. ``DBQ_MINIMAL_DB`` names the database
(a file for SQLite); ``DBQ_MINIMAL_DATABASE_URL``, when set, says which server.
"""

import os

import dj_database_url

SECRET_KEY = "django_dbq-minimal-not-secret"
USE_TZ = os.environ.get("DBQ_TEST_USE_TZ", "1") == "1"
TIME_ZONE = "UTC"
INSTALLED_APPS = ["django_dbq"]
if os.environ.get("DBQ_MINIMAL_DATABASE_URL"):
    _database = dj_database_url.parse(os.environ["DBQ_MINIMAL_DATABASE_URL"], conn_max_age=0)
    _database["NAME"] = os.environ["DBQ_MINIMAL_DB"]
    if _database["ENGINE"] == "django.db.backends.mysql":
        _database["OPTIONS"] = {"charset": "utf8mb4"}
else:
    _database = {
        "ENGINE": "django.db.backends.sqlite3",
        "NAME": os.environ["DBQ_MINIMAL_DB"],
        "OPTIONS": {"timeout": 30},
    }
DATABASES = {"default": _database}
JOBS = {
    "noop": ["tests.jobs.noop"],
    "chain": ["tests.jobs.step_one", "tests.jobs.step_two", "tests.jobs.step_three"],
    "failing": ["tests.jobs.raise_error"],
}
