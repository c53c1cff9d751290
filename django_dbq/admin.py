"""The Django admin for jobs: list, detail, retry/cancel/delete actions and a queue overview.

Django imports this module only when ``django.contrib.admin`` is installed, and it
registers :class:`JobAdmin` only in that case, so importing it by hand never needs
admin, auth or contenttypes in ``INSTALLED_APPS``.
"""

from __future__ import annotations

import datetime
import json
import re
import uuid
from urllib.parse import urlencode

from django.apps import apps
from django.contrib import admin, messages
from django.core.exceptions import ImproperlyConfigured, PermissionDenied
from django.db.models import Count, Min, Q, QuerySet
from django.db.models.functions import Coalesce
from django.http import HttpRequest, HttpResponse
from django.template.loader import render_to_string
from django.template.response import TemplateResponse
from django.urls import path, reverse
from django.utils import timezone
from django.utils.html import format_html
from django.utils.safestring import SafeString
from django.utils.text import capfirst
from django.utils.timesince import timesince
from django.utils.translation import ngettext

from .models import Job, JobQuerySet

RETRYABLE = ("FAILED", "CANCELLED")
# What someone may change on a job; everything else belongs to the worker.
EDITABLE = ("queue_name", "priority", "run_after", "max_attempts")
# The start of a job id as shown in the list (at least 4 hex digits, hyphens allowed).
ID_PREFIX = re.compile(r"^[0-9a-f]{4}[0-9a-f-]{0,32}$", re.IGNORECASE)


def _plural(count: int, singular: str, plural: str) -> str:
    return ngettext(singular, plural, count) % {"count": count}


def _age(then: datetime.datetime, now: datetime.datetime, depth: int = 1) -> str:
    seconds = int((now - then).total_seconds())
    if seconds < 60:
        return ngettext("%(count)d\xa0second", "%(count)d\xa0seconds", max(seconds, 0)) % {
            "count": max(seconds, 0)
        }
    return timesince(then, now, depth=depth)


def queue_overview(queryset: QuerySet, now: datetime.datetime | None = None) -> list[dict]:
    """Per queue: a count per state, due jobs, the oldest due job, jobs finished in the last hour.

    One aggregate query, grouped by queue. A job is *due* when it is NEW or READY and
    its ``run_after`` (if any) has come; it has been waiting since ``run_after`` or,
    without one, since it was created.
    """
    now = now or timezone.now()
    due = Q(state__in=JobQuerySet.RUNNABLE) & (Q(run_after__isnull=True) | Q(run_after__lte=now))
    finished = Q(state__in=JobQuerySet.FINISHED, finished_at__gte=now - datetime.timedelta(hours=1))
    per_state = {state: Count("pk", filter=Q(state=state)) for state in Job.STATES.values}
    rows = (
        queryset.order_by()
        .values("queue_name")
        .annotate(
            total=Count("pk"),
            due=Count("pk", filter=due),
            oldest_due=Min(Coalesce("run_after", "created"), filter=due),
            finished_last_hour=Count("pk", filter=finished),
            **per_state,
        )
        .order_by("queue_name")
    )
    overview = []
    for row in rows:
        oldest = row["oldest_due"]
        overview.append(
            {
                "queue_name": row["queue_name"],
                "total": row["total"],
                "states": {state: row[state] for state in Job.STATES.values},
                "due": row["due"],
                "oldest_due": oldest,
                "oldest_wait_seconds": max(0.0, (now - oldest).total_seconds()) if oldest else None,
                "finished_last_hour": row["finished_last_hour"],
            }
        )
    return overview


class JobAdmin(admin.ModelAdmin):
    list_display = (
        "short_id",
        "name",
        "state_badge",
        "queue_name",
        "priority",
        "attempts_display",
        "age",
        "next_task",
    )
    list_display_links = ("short_id", "name")
    list_filter = ("state", "queue_name", "name")
    search_fields = ("name", "queue_name", "unique_key")
    ordering = ("-created",)
    list_per_page = 50
    show_full_result_count = False
    actions = ("retry_jobs", "cancel_jobs")
    fieldsets = (
        (None, {"fields": ("id", "name", "state_badge", "next_task", ("created", "modified"))}),
        ("Last error", {"fields": ("error_text",)}),
        ("Workspace", {"fields": ("workspace_json",)}),
        (
            "Scheduling",
            {"fields": (("queue_name", "priority"), "run_after", "max_attempts", "unique_key")},
        ),
        (
            "Attempts and worker",
            {
                "fields": (
                    "attempts",
                    ("started_at", "finished_at"),
                    "cancel_requested",
                    "worker_id",
                    ("lease_token", "lease_expires_at"),
                )
            },
        ),
        ("Error of every attempt", {"classes": ("collapse",), "fields": ("errors_history",)}),
    )
    readonly_fields = (
        "id",
        "name",
        "state_badge",
        "next_task",
        "created",
        "modified",
        "attempts",
        "started_at",
        "finished_at",
        "cancel_requested",
        "unique_key",
        "worker_id",
        "lease_token",
        "lease_expires_at",
        "workspace_json",
        "errors_history",
        "error_text",
    )

    # -- list columns and detail fields ------------------------------------

    @admin.display(description="ID", ordering="id")
    def short_id(self, job: Job) -> str:
        return str(job.id)[:8]

    @admin.display(description="State", ordering="state")
    def state_badge(self, job: Job) -> SafeString:
        label = job.get_state_display()
        if job.cancel_requested and job.state in JobQuerySet.ACTIVE:
            label += " (cancel requested)"
        return format_html(
            '<span class="dbq-state dbq-state-{}">{}</span>', job.state.lower(), label
        )

    @admin.display(description="Attempts", ordering="attempts")
    def attempts_display(self, job: Job) -> str:
        return f"{job.attempts} / {job.max_attempts}"

    @admin.display(description="Age", ordering="created")
    def age(self, job: Job) -> str:
        return _age(job.created, timezone.now())

    @admin.display(description="Workspace")
    def workspace_json(self, job: Job) -> SafeString:
        text = json.dumps(job.workspace, indent=2, sort_keys=True, ensure_ascii=False, default=str)
        return format_html('<pre class="dbq-json">{}</pre>', text)

    @admin.display(description="Errors")
    def errors_history(self, job: Job) -> SafeString:
        records = [
            record if isinstance(record, dict) else {"message": str(record)}
            for record in (job.errors if isinstance(job.errors, list) else [job.errors])
            if record
        ]
        return render_to_string("admin/django_dbq/job/errors.html", {"records": records})

    @admin.display(description="Error")
    def error_text(self, job: Job) -> SafeString | str:
        return format_html('<pre class="dbq-traceback">{}</pre>', job.error) if job.error else "-"

    def get_search_results(self, request: HttpRequest, queryset: QuerySet, search_term: str):
        """Name, queue or unique key contain the words, or the job id is or starts with the term."""
        results, may_have_duplicates = super().get_search_results(request, queryset, search_term)
        term = search_term.strip().strip("\"'")
        try:
            return results | queryset.filter(pk=uuid.UUID(term)), may_have_duplicates
        except ValueError:
            pass
        if ID_PREFIX.match(term):
            results = results | queryset.filter(pk__istartswith=term.lower())
        return results, may_have_duplicates

    # -- permissions and saving --------------------------------------------

    def has_add_permission(self, request: HttpRequest) -> bool:
        # Jobs are created by code (``Job.objects.create``), where their definition runs.
        return False

    def save_model(self, request: HttpRequest, obj: Job, form, change: bool) -> None:
        # Write only what was changed here: the worker may have moved the job on
        # (state, workspace, errors) since the form was loaded.
        changed = [name for name in form.changed_data if name in EDITABLE]
        if changed:
            obj.save(update_fields=[*changed, "modified"])

    def render_change_form(self, request, context, add=False, change=False, form_url="", obj=None):
        # Buttons that post the retry/cancel action for this one job to the list,
        # which then shows the job (filtered by id) and what happened.
        buttons = []
        if obj is not None and self.has_change_permission(request, obj):
            if obj.state in RETRYABLE:
                buttons.append(("retry_jobs", "Retry"))
            if obj.state in JobQuerySet.RUNNABLE or (
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

    # -- actions ------------------------------------------------------------

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
        if retried:
            self.message_user(
                request,
                _plural(
                    retried,
                    "Retried %(count)d job: it is READY to run again from the step it stopped at.",
                    "Retried %(count)d jobs: they are READY to run again from the step they "
                    "stopped at.",
                ),
                messages.SUCCESS,
            )
        skipped = selected - retried - len(problems)
        if skipped:
            message = _plural(
                skipped,
                "Skipped %(count)d job that was not FAILED or CANCELLED.",
                "Skipped %(count)d jobs that were not FAILED or CANCELLED.",
            )
            self.message_user(request, message, messages.WARNING)
        if problems:
            self.message_user(request, "Could not retry " + "; ".join(problems), messages.ERROR)

    @admin.action(description="Cancel selected jobs", permissions=["change"])
    def cancel_jobs(self, request: HttpRequest, queryset: QuerySet) -> None:
        selected = queryset.count()
        cancelled = stopping = 0
        waiting_or_running = (*JobQuerySet.RUNNABLE, *JobQuerySet.ACTIVE)
        for job in queryset.filter(state__in=waiting_or_running).order_by("created"):
            if not job.cancel():
                continue  # finished meanwhile
            if job.state == Job.STATES.CANCELLED:
                cancelled += 1
                self.log_change(request, job, "Cancelled from the admin.")
            else:
                stopping += 1
                self.log_change(request, job, "Cancellation requested from the admin.")
        if cancelled:
            self.message_user(
                request,
                _plural(
                    cancelled,
                    "Cancelled %(count)d waiting job: it will not run.",
                    "Cancelled %(count)d waiting jobs: they will not run.",
                ),
                messages.SUCCESS,
            )
        if stopping:
            self.message_user(
                request,
                _plural(
                    stopping,
                    "Asked %(count)d running job to stop: it will not go on to its next step.",
                    "Asked %(count)d running jobs to stop: they will not go on to their next step.",
                ),
                messages.SUCCESS,
            )
        skipped = selected - cancelled - stopping
        if skipped:
            message = _plural(
                skipped,
                "Skipped %(count)d job that had already finished.",
                "Skipped %(count)d jobs that had already finished.",
            )
            self.message_user(request, message, messages.WARNING)

    # -- queue overview -----------------------------------------------------

    def get_urls(self):
        name = f"{self.opts.app_label}_{self.opts.model_name}_overview"
        view = self.admin_site.admin_view(self.overview_view)
        return [path("overview/", view, name=name), *super().get_urls()]

    def overview_view(self, request: HttpRequest) -> HttpResponse:
        if not self.has_view_permission(request):
            raise PermissionDenied
        now = timezone.now()
        changelist = reverse(
            f"{self.admin_site.name}:{self.opts.app_label}_{self.opts.model_name}_changelist"
        )

        def link(**filters: str) -> str:
            return f"{changelist}?{urlencode(filters)}"

        states = Job.STATES.choices
        rows = queue_overview(self.get_queryset(request), now)
        for row in rows:
            queue = {"queue_name": row["queue_name"]}
            row["link"] = link(**queue)
            row["cells"] = [
                (row["states"][state], link(**queue, state__exact=state)) for state, _ in states
            ]
            if row["oldest_due"]:
                row["oldest_age"] = _age(row["oldest_due"], now, depth=2)
        totals = [sum(row["states"][state] for row in rows) for state, _ in states]
        context = {
            **self.admin_site.each_context(request),
            "title": "Queue overview",
            "opts": self.opts,
            "app_label": self.opts.app_label,
            "changelist_url": changelist,
            "states": [label for _, label in states],
            "rows": rows,
            "totals": totals,
            "total_due": sum(row["due"] for row in rows),
            "total_finished_last_hour": sum(row["finished_last_hour"] for row in rows),
            "now": now,
            "verbose_name_plural": capfirst(self.opts.verbose_name_plural),
        }
        request.current_app = self.admin_site.name
        return TemplateResponse(request, "admin/django_dbq/job/overview.html", context)


if apps.is_installed("django.contrib.admin"):
    admin.site.register(Job, JobAdmin)
