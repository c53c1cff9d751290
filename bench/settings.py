"""Django settings for benchmarking django_dbq (``DJANGO_SETTINGS_MODULE=bench.settings``).

The database comes from ``DATABASE_URL``; ``bench/run.py`` points it at the
benchmark databases (``dbq_bench``), never at the test suite's.
"""

import os

import dj_database_url

SECRET_KEY = "bench-not-secret"
DEBUG = False
USE_TZ = True
TIME_ZONE = "UTC"
DEFAULT_AUTO_FIELD = "django.db.models.AutoField"

_database = dj_database_url.parse(os.environ["DATABASE_URL"], conn_max_age=0)
if _database["ENGINE"] == "django.db.backends.sqlite3":
    _database["OPTIONS"] = {"timeout": 30}
elif _database["ENGINE"] == "django.db.backends.mysql":
    _database["OPTIONS"] = {"charset": "utf8mb4"}
DATABASES = {"default": _database}

INSTALLED_APPS = ["django_dbq"]

JOBS = {
    "noop": ["bench.tasks.noop"],
    "chain3": ["bench.tasks.noop", "bench.tasks.noop_step2", "bench.tasks.noop_step3"],
    "pickup": ["bench.tasks.record_pickup"],
    "io": ["bench.tasks.io_wait"],
    "io_async": ["bench.tasks.io_wait_async"],  # the io scenario in --mode async
}

DBQ_POLL_INTERVAL = float(os.environ.get("BENCH_POLL_INTERVAL", "0.5"))
DBQ_LEASE_SECONDS = 60

LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "handlers": {"console": {"class": "logging.StreamHandler"}},
    "loggers": {"django_dbq": {"handlers": ["console"], "level": "WARNING"}},
}
