"""The ``tasks`` module of the ``tests`` app: workers discover its ``@task`` definitions.

Not listed in ``OPTIONS["task_modules"]``, so a worker finds ``discovered`` only by
importing the installed apps' ``tasks`` modules (tests/processes/test_task_registry.py).
"""

try:
    from django.tasks import task
except ImportError:  # Django 5.2 with the django-tasks backport
    from django_tasks import task


@task
def discovered(value):
    return {"discovered": value}
