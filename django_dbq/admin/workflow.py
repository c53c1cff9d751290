"""The admin's workflow pages: the list, and each workflow drawn with its counts by state."""

from __future__ import annotations

from typing import Any

from django.contrib import admin, messages
from django.db.models import QuerySet
from django.http import HttpRequest
from django.urls import reverse
from django.utils.safestring import mark_safe

from ..models import Job
from ..states import State
from ..workflows import Dependency, Workflow
from .drawing import draw


class WorkflowAdmin(admin.ModelAdmin):
    list_display = ("name", "id", "created", "outcome", "finished_at")
    search_fields = ("name",)
    ordering = ("-created",)
    readonly_fields = ("id", "name", "created", "finished_at", "failed")
    actions = ("cancel_workflows",)
    change_form_template = "admin/django_dbq/workflow/change_form.html"

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False  # workflows are made by code: Workflow.enqueue()

    def has_change_permission(self, request: HttpRequest, obj=None) -> bool:
        return False  # nothing to edit: the page shows the workflow and its jobs

    def has_cancel_permission(self, request: HttpRequest) -> bool:
        """Cancelling a workflow changes its jobs: the permission to change jobs."""
        return request.user.has_perm(f"{Job._meta.app_label}.change_{Job._meta.model_name}")

    @admin.display(description="outcome")
    def outcome(self, workflow: Workflow) -> str:
        if workflow.finished_at is None:
            return "running"
        return "failed" if workflow.failed else "complete"

    @admin.action(description="Cancel selected workflows", permissions=["cancel"])
    def cancel_workflows(self, request: HttpRequest, queryset: QuerySet) -> None:
        changed = sum(workflow.cancel() for workflow in queryset)
        self.message_user(request, f"Cancelled {changed} job(s).", messages.SUCCESS)

    def change_view(
        self, request: HttpRequest, object_id: str, form_url: str = "", extra_context=None
    ):
        workflow = self.get_object(request, object_id)
        context = dict(extra_context or {})
        if workflow is not None:
            context.update(self.drawing_context(workflow))
        return super().change_view(request, object_id, form_url, context)

    def drawing_context(self, workflow: Workflow) -> dict[str, Any]:
        """The drawing of ``workflow`` and its counts by state, for the page."""
        jobs = list(Job.objects.filter(workflow=workflow).values("pk", "name", "state"))
        ids = [job["pk"] for job in jobs]
        edges = list(
            Dependency.objects.filter(job_id__in=ids).values_list("job_id", "depends_on_id")
        )
        site = self.admin_site.name

        def link(pk: Any) -> str:
            return reverse(f"{site}:django_dbq_job_change", args=[pk])

        counts = {state.label: 0 for state in State}
        for job in jobs:
            counts[State(job["state"]).label] += 1
        return {
            # Every text in it went through escape() in .drawing.
            "dbq_drawing": mark_safe(draw(jobs, edges, link)),
            "dbq_counts": [(label, count) for label, count in counts.items() if count],
            "dbq_status": workflow.status()["state"],
        }
