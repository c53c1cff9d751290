"""``manage.py delete_old_jobs [--hours N]``: delete finished jobs, in batches."""

import math

from django.core.management.base import BaseCommand, CommandError

from django_dbq.models import DEFAULT_DELETE_JOBS_AFTER_HOURS, Job


class Command(BaseCommand):
    help = "Delete COMPLETE, FAILED, CANCELLED (and abandoned STOPPING) jobs older than --hours"
    # Needs no task code, so it does not run the system checks that import it.
    requires_system_checks = []

    def add_arguments(self, parser):
        parser.add_argument(
            "--hours",
            type=float,
            default=DEFAULT_DELETE_JOBS_AFTER_HOURS,
            help=f"age in hours (default {DEFAULT_DELETE_JOBS_AFTER_HOURS}; 0 deletes them all)",
        )
        parser.add_argument("--batch-size", type=int, default=1000)

    def handle(self, *args, **options):
        if not math.isfinite(options["hours"]) or options["hours"] < 0:
            raise CommandError("--hours must be a number of at least 0.")
        if options["batch_size"] < 1:
            raise CommandError("--batch-size must be at least 1.")
        deleted = Job.objects.delete_old(hours=options["hours"], batch_size=options["batch_size"])
        self.stdout.write(f"Deleted {deleted} job(s)")
