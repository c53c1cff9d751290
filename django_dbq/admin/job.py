"""The job list and a job's page in the Django admin (:class:`JobAdmin`).

Retry and Cancel come from :mod:`.actions`, the queue overview from :mod:`.overview`.
"""

from __future__ import annotations

import json
import re
import uuid

from django.contrib import admin
from django.db.models import QuerySet
from django.http import HttpRequest
from django.template.loader import render_to_string
from django.utils import timezone
from django.utils.html import format_html
from django.utils.safestring import SafeString

from ..models import Job, JobQuerySet
from ..progress import percent
from .actions import JobActionsMixin
from .overview import QueueOverviewMixin, age_text

# What someone may change on a job; everything else belongs to the worker.
EDITABLE = ("queue_name", "priority", "run_after", "max_attempts")
# The start of a job id as shown in the list (at least 4 hex digits, hyphens allowed).
ID_PREFIX = re.compile(r"^[0-9a-f]{4}[0-9a-f-]{0,32}$", re.IGNORECASE)


class JobAdmin(JobActionsMixin, QueueOverviewMixin, admin.ModelAdmin):
    list_display = (
        "short_id",
        "name",
        "state_badge",
        "queue_name",
        "priority",
        "attempts_display",
        "progress_display",
        "age",
        "next_task",
    )
    list_display_links = ("short_id", "name")
    list_filter = ("state", "queue_name", "name")
    search_fields = ("name", "queue_name", "unique_key", "=concurrency_key")
    ordering = ("-created",)
    list_per_page = 50
    show_full_result_count = False
    actions = ("retry_jobs", "cancel_jobs")
    fieldsets = (
        (
            None,
            {
                "fields": (
                    "id",
                    "name",
                    "state_badge",
                    "next_task",
                    "progress_display",
                    ("created", "modified"),
                )
            },
        ),
        ("Last error", {"fields": ("error_text",)}),
        ("Workspace", {"fields": ("workspace_json",)}),
        (
            "Scheduling",
            {
                "fields": (
                    ("queue_name", "priority"),
                    "run_after",
                    "max_attempts",
                    "unique_key",
                    ("concurrency_key", "concurrency_limit"),
                )
            },
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
        "concurrency_key",
        "concurrency_limit",
        "worker_id",
        "lease_token",
        "lease_expires_at",
        "workspace_json",
        "progress_display",
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

    @admin.display(description="Progress")
    def progress_display(self, job: Job) -> SafeString | str:
        reported = job.progress
        if not reported:
            return "-"
        share = percent(reported)
        total = reported.get("total")
        figures = (
            f"{reported['done']:g} / {total:g}" if total is not None else f"{reported['done']:g}"
        )
        if share is None:
            return format_html(
                '<span class="dbq-progress">{} {}</span>', figures, reported["message"]
            )
        return format_html(
            '<progress class="dbq-progress" max="100" value="{}" title="{}"></progress> {} {}',
            f"{share:.0f}",
            f"{share:.0f}%",
            figures,
            reported["message"],
        )

    @admin.display(description="Age", ordering="created")
    def age(self, job: Job) -> str:
        return age_text(job.created, timezone.now())

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

    # -- actions ------------------------------------------------------------

    # -- queue overview -----------------------------------------------------
