"""``manage.py delete_old_jobs [--hours N] [--batch-size N]``: delete finished jobs, in batches.

At ``--verbosity 2`` it prints a line per batch, so that a long run on a big table
shows that it is getting on.
"""

from django.core.management.base import BaseCommand

from django_dbq.models import DEFAULT_DELETE_JOBS_AFTER_HOURS, Job

from . import _options


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
        parser.add_argument(
            "--batch-size",
            "--batch_size",
            dest="batch_size",
            type=int,
            default=1000,
            help="jobs deleted per statement (default 1000)",
        )

    def handle(self, *args, **options):
        hours = _options.number("--hours", options["hours"])
        batch_size = _options.whole_number("--batch-size", options["batch_size"])
        so_far = 0

        def report(batch: int) -> None:
            nonlocal so_far
            so_far += batch
            self.stdout.write(f"Deleted {batch} {jobs(batch)} ({so_far} so far)")
            self.stdout.flush()  # a pipe would hold the lines until the end

        deleted = Job.objects.delete_old(
            hours=hours,
            batch_size=batch_size,
            progress=report if options["verbosity"] > 1 else None,
        )
        self.stdout.write(f"Deleted {deleted} job(s)")


def jobs(count: int) -> str:
    return "job" if count == 1 else "jobs"
