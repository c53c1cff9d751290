"""``manage.py cancel_job <id> [<id> ...]``: cancel waiting jobs, stop running ones."""

from django.core.management.base import BaseCommand

from ._jobs import find_jobs


class Command(BaseCommand):
    help = (
        "Cancel jobs: a NEW or READY job is cancelled at once; a running job is asked to stop "
        "(it does not go on to its next step). Finished jobs are left as they are."
    )
    requires_system_checks = []

    def add_arguments(self, parser):
        parser.add_argument("job_id", nargs="+", help="ids of the jobs to cancel")

    def handle(self, *args, **options):
        ids = options["job_id"]
        jobs = find_jobs([ids] if isinstance(ids, str) else list(ids))  # all known, or no change
        for job in jobs:
            before = job.state
            if not job.cancel():
                self.stdout.write(f"{job.pk} not cancelled: already {job.state}")
            elif job.state == job.STATES.CANCELLED:
                self.stdout.write(f"{job.pk} cancelled (was {before})")
            else:
                self.stdout.write(f"{job.pk} cancel requested: it stops after its current step")
