"""The admin's Retry and Cancel: list actions, and buttons on a job's page that post them."""

from __future__ import annotations

from urllib.parse import urlencode

from django.contrib import admin, messages
from django.core.exceptions import ImproperlyConfigured
from django.db.models import QuerySet
from django.http import HttpRequest
from django.urls import reverse
from django.utils.translation import ngettext

from ..models import Job, JobQuerySet
from ..states import RETRYABLE


class JobActionsMixin:
    """``retry_jobs`` and ``cancel_jobs`` for :class:`~django_dbq.admin.JobAdmin`."""

    def render_change_form(self, request, context, add=False, change=False, form_url="", obj=None):
        # Buttons that post the retry/cancel action for this one job to the list,
        # which then shows the job (filtered by id) and what happened.
        buttons = []
        if obj is not None and self.has_change_permission(request, obj):
            if obj.state in RETRYABLE:
                buttons.append(("retry_jobs", "Retry"))
            if obj.state in (Job.STATES.WAITING, *JobQuerySet.RUNNABLE) or (
                obj.state in JobQuerySet.ACTIVE and not obj.cancel_requested
            ):
                buttons.append(("cancel_jobs", "Cancel"))
        context["dbq_job_actions"] = buttons
        if buttons:
            changelist = reverse(
                f"{self.admin_site.name}:{self.opts.app_label}_{self.opts.model_name}_changelist"
            )
            context["dbq_action_url"] = f"{changelist}?{urlencode({'id__exact': obj.pk})}"
        return super().render_change_form(request, context, add, change, form_url, obj)

    def _tell(self, request: HttpRequest, count: int, one: str, many: str, level: int) -> None:
        """A message about ``count`` jobs (``%(count)d`` in ``one``/``many``), none for 0."""
        if count:
            self.message_user(request, ngettext(one, many, count) % {"count": count}, level)

    @admin.action(description="Retry selected failed or cancelled jobs", permissions=["change"])
    def retry_jobs(self, request: HttpRequest, queryset: QuerySet) -> None:
        selected = queryset.count()
        retried, problems = 0, []
        for job in queryset.filter(state__in=RETRYABLE).order_by("created"):
            try:
                job.retry()
            except (ValueError, KeyError, ImproperlyConfigured) as error:
                # Changed state meanwhile, or its name/step is no longer in JOBS.
                message = error.args[0] if error.args else error
                problems.append(f"{str(job.id)[:8]} ({job.name}): {message}")
                continue
            retried += 1
            self.log_change(request, job, "Retried from the admin.")
        self._tell(
            request,
            retried,
            "Retried %(count)d job: it is READY to run again from the step it stopped at.",
            "Retried %(count)d jobs: they are READY to run again from the step they stopped at.",
            messages.SUCCESS,
        )
        self._tell(
            request,
            selected - retried - len(problems),
            "Skipped %(count)d job that was not FAILED or CANCELLED.",
            "Skipped %(count)d jobs that were not FAILED or CANCELLED.",
            messages.WARNING,
        )
        if problems:
            self.message_user(request, "Could not retry " + "; ".join(problems), messages.ERROR)

    @admin.action(description="Cancel selected jobs", permissions=["change"])
    def cancel_jobs(self, request: HttpRequest, queryset: QuerySet) -> None:
        selected = queryset.count()
        cancelled = stopping = 0
        waiting_or_running = (Job.STATES.WAITING, *JobQuerySet.RUNNABLE, *JobQuerySet.ACTIVE)
        for job in queryset.filter(state__in=waiting_or_running).order_by("created"):
            if not job.cancel():
                continue  # finished meanwhile
            if job.state == Job.STATES.CANCELLED:
                cancelled += 1
                self.log_change(request, job, "Cancelled from the admin.")
            else:
                stopping += 1
                self.log_change(request, job, "Cancellation requested from the admin.")
        self._tell(
            request,
            cancelled,
            "Cancelled %(count)d waiting job: it will not run.",
            "Cancelled %(count)d waiting jobs: they will not run.",
            messages.SUCCESS,
        )
        self._tell(
            request,
            stopping,
            "Asked %(count)d running job to stop: it will not go on to its next step.",
            "Asked %(count)d running jobs to stop: they will not go on to their next step.",
            messages.SUCCESS,
        )
        self._tell(
            request,
            selected - cancelled - stopping,
            "Skipped %(count)d job that had already finished.",
            "Skipped %(count)d jobs that had already finished.",
            messages.WARNING,
        )
