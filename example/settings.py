"""A minimal project for the demo: django_dbq alone, on SQLite."""

from pathlib import Path

BASE_DIR = Path(__file__).resolve().parent.parent
(BASE_DIR / "var").mkdir(exist_ok=True)

SECRET_KEY = "django_dbq-demo-not-secret"
USE_TZ = True
INSTALLED_APPS = ["django_dbq"]
DATABASES = {
    "default": {
        "ENGINE": "django.db.backends.sqlite3",
        "NAME": BASE_DIR / "var" / "demo.sqlite3",
        "OPTIONS": {"timeout": 30},
    }
}

# Two chained tasks: the first counts words, the second turns the counts into a summary.
JOBS = {
    "word_report": {
        "tasks": ["example.jobs.count_words", "example.jobs.summarise"],
        "creation_hook": "example.jobs.stamp_request",
    },
}

LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "handlers": {"console": {"class": "logging.StreamHandler"}},
    "loggers": {"django_dbq": {"handlers": ["console"], "level": "WARNING"}},
}
