"""``manage.py create_job <job_name> [--queue_name Q] [--workspace JSON] [--priority N]``."""

import json

from django.core.exceptions import ImproperlyConfigured
from django.core.management.base import BaseCommand, CommandError

from django_dbq.enqueue import PRIORITY_RANGE, UNIQUE_KEY_MAX_LENGTH
from django_dbq.exceptions import InvalidWorkspace, UnknownJob
from django_dbq.models import Job

from . import _options


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
        workspace = parse_workspace(options["workspace"])
        queue_name = _options.queue_name("--queue_name", options["queue_name"])
        priority = options["priority"]
        low, high = PRIORITY_RANGE
        if (
            isinstance(priority, bool)
            or not isinstance(priority, int)
            or not low <= priority <= high
        ):
            raise CommandError(f"--priority must be between {low} and {high}, not {priority!r}.")
        unique_key = options["unique_key"]
        if unique_key is not None and (
            not isinstance(unique_key, str) or not 0 < len(unique_key) <= UNIQUE_KEY_MAX_LENGTH
        ):
            raise CommandError(
                f"--unique-key must be 1 to {UNIQUE_KEY_MAX_LENGTH} characters, not {unique_key!r}."
            )
        try:
            job = Job.objects.create(
                name=options["job_name"],
                queue_name=queue_name,
                workspace=workspace,
                priority=priority,
                unique_key=unique_key,
            )
        except InvalidWorkspace as error:
            raise CommandError(f"--workspace: {error}")
        except UnknownJob as error:
            raise CommandError(f"job_name: {error}")
        except (ValueError, ImproperlyConfigured) as error:
            raise CommandError(str(error))
        if options["verbosity"] > 1:
            self.stdout.write(f"Created job {job.name} on queue {job.queue_name}: {job.pk}")
        else:
            self.stdout.write(str(job.pk))


def parse_workspace(value: object) -> dict:
    """The ``--workspace`` option as a dict: a JSON object, or a dict from ``call_command``."""
    if value is None:
        return {}
    if isinstance(value, dict):  # call_command(..., workspace={...})
        return value
    if not isinstance(value, str):
        raise CommandError(f"--workspace must be a JSON object, not {value!r}.")
    try:
        workspace = json.loads(value)
    except ValueError as error:
        raise CommandError(f"--workspace is not valid JSON: {error}")
    if not isinstance(workspace, dict):
        raise CommandError("--workspace must be a JSON object, like '{\"key\": 1}'.")
    return workspace
