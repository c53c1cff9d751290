from django.apps import AppConfig
from django.core import checks


class DjangoDBQConfig(AppConfig):
    name = "django_dbq"
    verbose_name = "Job queue"
    default_auto_field = "django.db.models.AutoField"

    def ready(self) -> None:
        from .checks import check_jobs, check_settings

        checks.register(check_jobs)
        checks.register(check_settings)
