"""Django settings for django-db-queue 3.x, used only inside its own virtualenv."""

import os

import dj_database_url

SECRET_KEY = "bench-not-secret"
USE_TZ = True
TIME_ZONE = "UTC"
DEFAULT_AUTO_FIELD = "django.db.models.AutoField"
DATABASES = {"default": dj_database_url.parse(os.environ["DATABASE_URL"], conn_max_age=600)}
INSTALLED_APPS = ["django_dbq"]
JOBS = {
    "noop": {"tasks": ["dbq3_tasks.noop"]},
    "chain3": {"tasks": ["dbq3_tasks.noop", "dbq3_tasks.noop", "dbq3_tasks.noop"]},
    "pickup": {"tasks": ["dbq3_tasks.record_pickup"]},
}
LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "handlers": {"console": {"class": "logging.StreamHandler"}},
    "loggers": {"django_dbq": {"handlers": ["console"], "level": "WARNING"}},
}
