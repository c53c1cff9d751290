"""``manage.py create_job <job_name> [--queue_name Q] [--workspace JSON]``."""

import json

from django.core.exceptions import ImproperlyConfigured
from django.core.management.base import BaseCommand, CommandError

from django_dbq.exceptions import UnknownJob
from django_dbq.models import Job


class Command(BaseCommand):
    help = "Create a job and print its id"
    # The system checks import every task module; enqueueing must not need the workers' code.
    requires_system_checks = []

    def add_arguments(self, parser):
        parser.add_argument("job_name")
        parser.add_argument("--queue_name", "--queue-name", dest="queue_name", default="default")
        parser.add_argument("--workspace", default=None, help="a JSON object")
        parser.add_argument("--priority", type=int, default=0)
        parser.add_argument("--unique-key", "--unique_key", dest="unique_key", default=None)

    def handle(self, *args, **options):
        workspace = {}
        if isinstance(options["workspace"], dict):  # call_command(..., workspace={...})
            workspace = options["workspace"]
        elif options["workspace"] is not None:
            try:
                workspace = json.loads(options["workspace"])
            except ValueError as error:
                raise CommandError(f"--workspace is not valid JSON: {error}")
            if not isinstance(workspace, dict):
                raise CommandError("--workspace must be a JSON object, like '{\"key\": 1}'.")
        queue_name = options["queue_name"]
        if not queue_name or len(queue_name) > 100:
            raise CommandError("--queue_name must be 1 to 100 characters.")
        if not -32768 <= options["priority"] <= 32767:
            raise CommandError("--priority must be between -32768 and 32767.")
        try:
            job = Job.objects.create(
                name=options["job_name"],
                queue_name=queue_name,
                workspace=workspace,
                priority=options["priority"],
                unique_key=options["unique_key"],
            )
        except (UnknownJob, ValueError, ImproperlyConfigured) as error:
            raise CommandError(str(error))
        if options["verbosity"] > 1:
            self.stdout.write(f"Created job {job.name} on queue {job.queue_name}: {job.pk}")
        else:
            self.stdout.write(str(job.pk))
