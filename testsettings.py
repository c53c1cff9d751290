"""Settings for the test suite and the development project (``manage.py``).

The database comes from ``DATABASE_URL`` (SQLite in ``var/`` when unset). Worker
subprocesses started by the tests get ``DBQ_TEST_DATABASE_NAME`` so that they
connect to the test database the suite created.
"""

import os
from pathlib import Path

import dj_database_url

BASE_DIR = Path(__file__).resolve().parent
VAR_DIR = BASE_DIR / "var"
VAR_DIR.mkdir(exist_ok=True)

SECRET_KEY = "django_dbq-tests-not-secret"
DEBUG = False
USE_TZ = os.environ.get("DBQ_TEST_USE_TZ", "1") == "1"
TIME_ZONE = "UTC"
ROOT_URLCONF = "tests.urls"
ALLOWED_HOSTS = ["*"]
DEFAULT_AUTO_FIELD = "django.db.models.AutoField"

_suffix = os.environ.get("DBQ_TEST_DB_SUFFIX", "")
_database = dj_database_url.parse(
    os.environ.get("DATABASE_URL", f"sqlite:///{VAR_DIR / 'dbq.sqlite3'}"), conn_max_age=0
)
if _database["ENGINE"] == "django.db.backends.sqlite3":
    _database["OPTIONS"] = {"timeout": 30}
    _database["TEST"] = {"NAME": str(VAR_DIR / f"test_dbq{_suffix}.sqlite3")}
else:
    _database["TEST"] = {"NAME": f"test_{_database['NAME']}{_suffix}"}
    if _database["ENGINE"] == "django.db.backends.mysql":
        _database["OPTIONS"] = {"charset": "utf8mb4"}
        _database["TEST"]["CHARSET"] = "utf8mb4"
if os.environ.get("DBQ_TEST_DATABASE_NAME"):
    _database["NAME"] = os.environ["DBQ_TEST_DATABASE_NAME"]
DATABASES = {"default": _database}

INSTALLED_APPS = [
    "django.contrib.admin",
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "django.contrib.staticfiles",
    "django_dbq",
    "tests",
]
MIDDLEWARE = [
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
]
TEMPLATES = [
    {
        "BACKEND": "django.template.backends.django.DjangoTemplates",
        "APP_DIRS": True,
        "OPTIONS": {
            "context_processors": [
                "django.template.context_processors.request",
                "django.contrib.auth.context_processors.auth",
                "django.contrib.messages.context_processors.messages",
            ]
        },
    }
]
STATIC_URL = "/static/"

JOBS = {
    "noop": ["tests.jobs.noop"],
    "chain": ["tests.jobs.step_one", "tests.jobs.step_two", "tests.jobs.step_three"],
    "failing": {
        "tasks": ["tests.jobs.raise_error"],
        "failure_hook": "tests.jobs.record_failure",
    },
    "hooked": {
        "tasks": ["tests.jobs.step_one", "tests.jobs.step_two"],
        "creation_hook": "tests.jobs.creation_hook",
        "pre_task_hook": "tests.jobs.pre_task_hook",
        "post_task_hook": "tests.jobs.post_task_hook",
    },
    "recorded": ["tests.jobs.record_a", "tests.jobs.record_b", "tests.jobs.record_c"],
    "slow": ["tests.jobs.sleep_step", "tests.jobs.record_a", "tests.jobs.record_b"],
    # A finished step, a long one, then one more (fault suite: kills and signals mid-task).
    "long": ["tests.jobs.record_a", "tests.jobs.sleep_step", "tests.jobs.record_b"],
    # Dynamic fan-out (tests/*/test_fan_out.py): a step adds parts to its own workflow.
    "splits": {
        "tasks": ["tests.workflow_tasks.split", "tests.jobs.record_b"],
        "max_attempts": 3,
        "retry_backoff": "fixed",
        "retry_delay": 0,
    },
    "part": ["tests.workflow_tasks.part"],
    # Progress (tests/*/test_progress.py).
    "counts_up": ["tests.progress_tasks.count_up", "tests.jobs.record_b"],
    "reports_then_holds": ["tests.progress_tasks.report_then_hold"],
    "counts_up_async": ["tests.progress_tasks.count_up_async"],
    # The same, its long step recording its start: a signal sent once that record is there
    # cannot fall between two steps.
    "long_marked": ["tests.jobs.record_a", "tests.jobs.overlap_step", "tests.jobs.record_b"],
    "flaky": {
        "tasks": ["tests.jobs.fail_until"],
        "max_attempts": 3,
        "retry_backoff": "fixed",
        "retry_delay": 0,
    },
    "timed": {"tasks": ["tests.jobs.sleep_step"], "timeout": 1},
    # The threads mode (tests/*/test_threads.py): jobs whose records show overlap; a long
    # first attempt between two recorded steps (kills, then a rescue that runs at once).
    "overlapping": ["tests.jobs.overlap_step"],
    # Concurrency keys (tests/*/test_concurrency_keys.py): two at once per key.
    "per_account": {"tasks": ["tests.jobs.overlap_step"], "concurrency_per_key": 2},
    "long_first": ["tests.jobs.record_a", "tests.jobs.sleep_first_attempt", "tests.jobs.record_b"],
    # The async mode (tests/processes/test_async_mode.py): async def steps, some between
    # synchronous ones; a first attempt past its timeout, retried.
    "async_barrier": ["tests.async_jobs.barrier"],
    "async_long": ["tests.jobs.record_a", "tests.async_jobs.sleep", "tests.jobs.record_b"],
    "async_first": [
        "tests.jobs.record_a",
        "tests.async_jobs.sleep_first_attempt",
        "tests.jobs.record_b",
    ],
    "async_timed": {
        "tasks": ["tests.async_jobs.sleep_first_attempt", "tests.jobs.record_b"],
        "timeout": 1,
        "max_attempts": 2,
        "retry_backoff": "fixed",
        "retry_delay": 0,
    },
    # Used by the feature tests (retries, cancel, imports, schedules).
    "probe": ["tests.probe_tasks.run"],
    "cancellable": ["tests.jobs.wait_for_cancel", "tests.jobs.record_b"],
    "retrying": {
        "tasks": ["tests.jobs.record_a", "tests.jobs.fail_until", "tests.jobs.record_c"],
        "failure_hook": "tests.jobs.count_failure",
        "max_attempts": 3,
        "retry_backoff": "fixed",
        "retry_delay": 0,
    },
    # The lifecycle state machine (tests/databases/test_lifecycle_state_machine.py): steps
    # that run on any workspace; two steps without a retry (its last step is reached in few
    # moves), three with one.
    "lifecycle": ["tests.jobs.tally_a", "tests.jobs.tally_b"],
    "lifecycle_retrying": {
        "tasks": ["tests.jobs.tally_a", "tests.jobs.tally_b", "tests.jobs.tally_c"],
        "max_attempts": 2,
        "retry_backoff": "fixed",
        "retry_delay": 0,
    },
    # scripts/soak.py: three recorded steps that each take a moment.
    "soak": ["tests.jobs.soak_one", "tests.jobs.soak_two", "tests.jobs.soak_three"],
    "fail_after_cancel": {
        "tasks": ["tests.jobs.fail_then_cancelled", "tests.jobs.record_b"],
        "max_attempts": 3,
        "retry_backoff": "fixed",
        "retry_delay": 0,
    },
    # Tasks that misbehave the ways the hardening review found (tests/processes/test_hardening.py).
    "misbehave": ["tests.hardening_tasks.misbehave"],
    "misbehave_timed": {"tasks": ["tests.hardening_tasks.misbehave"], "timeout": 1},
    "keep_saving": ["tests.hardening_tasks.keep_saving", "tests.jobs.record_b"],
    "save_during_step": ["tests.hardening_tasks.save_during_step", "tests.jobs.record_b"],
    "save_after_losing": ["tests.hardening_tasks.save_after_losing_the_claim"],
    "cancel_other": ["tests.hardening_tasks.cancel_the_other_job"],
    "retried_later": {
        "tasks": ["tests.jobs.fail_until"],
        "max_attempts": 2,
        "retry_backoff": "fixed",
        "retry_delay": 2,
    },
    # The same hooks run under django-db-queue 3.3.0 and here (tests/processes/test_drop_in.py).
    "hook_probe": {
        "tasks": ["tests.hook_probe.first", "tests.hook_probe.second"],
        "pre_task_hook": "tests.hook_probe.pre_task",
        "post_task_hook": "tests.hook_probe.post_task",
        "failure_hook": "tests.hook_probe.failure",
    },
}

DBQ_LEASE_SECONDS = float(os.environ.get("DBQ_LEASE_SECONDS", "60"))
DBQ_POLL_INTERVAL = float(os.environ.get("DBQ_POLL_INTERVAL", "0.5"))

LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "formatters": {"plain": {"format": "%(asctime)s %(levelname)s %(name)s %(message)s"}},
    "handlers": {"console": {"class": "logging.StreamHandler", "formatter": "plain"}},
    "loggers": {
        "django_dbq": {"handlers": ["console"], "level": os.environ.get("DBQ_LOG_LEVEL", "INFO")}
    },
}

# Django's Tasks framework (tests/*/test_tasks_backend.py). On Django 5.2 the API comes
# from the django-tasks backport, which is an app of its own.
try:
    import django.tasks  # noqa: F401
except ImportError:
    INSTALLED_APPS.append("django_tasks")
TASKS = {
    "default": {
        "BACKEND": "django_dbq.tasks_backend.DatabaseBackend",
        "QUEUES": ["default", "tasks"],
        "OPTIONS": {
            "retry_backoff": "fixed",
            "retry_delay": 0,
            # The worker runs only registered tasks: import this module's @task definitions.
            "task_modules": ["tests.tasks_app"],
        },
    },
    "retrying": {
        "BACKEND": "django_dbq.tasks_backend.DatabaseBackend",
        "QUEUES": [],  # any queue
        "OPTIONS": {
            "max_attempts": 2,
            "retry_backoff": "fixed",
            "retry_delay": 0,
            "tasks": {"tests.tasks_app.explode": {"max_attempts": 3}},
        },
    },
}
