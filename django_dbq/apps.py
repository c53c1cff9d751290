import logging
from importlib import import_module

from django.apps import AppConfig
from django.conf import settings
from django.core import checks

logger = logging.getLogger(__name__)

TASKS_BACKEND_PACKAGE = "django_dbq.tasks_backend"


class DjangoDBQConfig(AppConfig):
    name = "django_dbq"
    verbose_name = "Job queue"
    default_auto_field = "django.db.models.AutoField"

    def ready(self) -> None:
        from .checks import check_jobs, check_settings

        checks.register(check_jobs)
        checks.register(check_settings)
        if uses_tasks_backend():
            # It registers the resolver of task job names with the definitions, so that
            # any process (a worker, the admin) can resolve a task job's row.
            try:
                import_module(TASKS_BACKEND_PACKAGE).register()
            except ImportError as error:  # no Tasks framework: task jobs stay unknown jobs
                logger.warning("TASKS uses django_dbq's backend, which cannot load: %s", error)


def uses_tasks_backend() -> bool:
    """True if a backend in ``TASKS`` is django_dbq's (by its path: nothing is imported)."""
    backends = getattr(settings, "TASKS", None) or {}
    return isinstance(backends, dict) and any(
        isinstance(params, dict)
        and str(params.get("BACKEND", "")).startswith(TASKS_BACKEND_PACKAGE + ".")
        for params in backends.values()
    )
