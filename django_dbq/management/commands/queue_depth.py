"""``manage.py queue_depth [queue_name ...] [--exclude_future_jobs] [--format json]``."""

import json

from django.core.management.base import BaseCommand

from django_dbq.models import Job


class Command(BaseCommand):
    help = "Print how many jobs wait (NEW or READY) in each queue"
    # Needs no task code, so it does not run the system checks that import it.
    requires_system_checks = []

    def add_arguments(self, parser):
        parser.add_argument("queue_name", nargs="*", default=["default"])
        parser.add_argument(
            "--exclude_future_jobs",
            "--exclude-future-jobs",
            dest="exclude_future_jobs",
            action="store_true",
            help="leave out jobs whose run_after has not come yet",
        )
        parser.add_argument("--format", choices=("text", "json"), default="text")

    def handle(self, *args, **options):
        queue_names = options["queue_name"]
        if isinstance(queue_names, str):
            queue_names = [queue_names]
        depths = Job.get_queue_depths(exclude_future_jobs=options["exclude_future_jobs"])
        ordered = {name: depths.get(name, 0) for name in queue_names or ["default"]}
        if options["format"] == "json":
            self.stdout.write(json.dumps({"queue_depths": ordered}))
        else:
            pairs = " ".join(f"{name}={count}" for name, count in ordered.items())
            self.stdout.write(f"event=queue_depths {pairs}")
