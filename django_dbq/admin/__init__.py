"""The Django admin for jobs: list, detail, retry/cancel/delete actions and a queue overview.

Django imports this package only when ``django.contrib.admin`` is installed, and it
registers :class:`JobAdmin` only in that case, so importing it by hand never needs
admin, auth or contenttypes in ``INSTALLED_APPS``.
"""

from django.apps import apps
from django.contrib import admin

from ..models import Job
from .actions import RETRYABLE, JobActionsMixin
from .job import EDITABLE, JobAdmin
from .overview import QueueOverviewMixin, queue_overview
from .workflow import Workflow, WorkflowAdmin

__all__ = [
    "EDITABLE",
    "RETRYABLE",
    "JobActionsMixin",
    "JobAdmin",
    "QueueOverviewMixin",
    "WorkflowAdmin",
    "queue_overview",
]

if apps.is_installed("django.contrib.admin"):
    admin.site.register(Job, JobAdmin)
    admin.site.register(Workflow, WorkflowAdmin)
