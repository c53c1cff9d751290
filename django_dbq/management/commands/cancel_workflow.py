"""``manage.py cancel_workflow <id> [<id> ...]``: cancel every unfinished job of workflows."""

from __future__ import annotations

from django.core.management.base import BaseCommand

from django_dbq.workflows import Workflow

from ._jobs import find_rows


class Command(BaseCommand):
    help = (
        "Cancel workflows: their waiting jobs are cancelled at once, their running jobs are "
        "asked to stop after their current step. Finished jobs are left as they are."
    )
    requires_system_checks = []

    def add_arguments(self, parser):
        parser.add_argument("workflow_id", nargs="+", help="ids of the workflows to cancel")

    def handle(self, *args, **options):
        ids = options["workflow_id"]
        workflows = find_rows(Workflow, [ids] if isinstance(ids, str) else list(ids), "workflow")
        for workflow in workflows:  # all known, or nothing changes
            changed = workflow.cancel()
            self.stdout.write(f"{workflow.pk}: {changed} job(s) cancelled or asked to stop")
