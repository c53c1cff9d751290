"""``manage.py worker [queue_name ...]``: run a worker until SIGTERM/SIGINT (or ``--drain``)."""

from django.core.management.base import BaseCommand, CommandError

from django_dbq.outages import wait_for_database
from django_dbq.worker import Worker

__all__ = ["Command", "Worker"]  # Worker is importable from here, as in django-db-queue 3.x


class Command(BaseCommand):
    help = "Run a job worker for one or more queues"

    def add_arguments(self, parser):
        parser.add_argument("queue_name", nargs="*", default=["default"], help="queues to work")
        parser.add_argument(
            "--rate_limit",
            "--rate-limit",
            dest="rate_limit",
            type=float,
            default=0,
            help="minimum seconds between the starts of two jobs (default 0: back to back)",
        )
        parser.add_argument(
            "--dry-run",
            "--dry_run",
            dest="dry_run",
            action="store_true",
            help="set up, print the start line and exit",
        )
        parser.add_argument(
            "--drain", action="store_true", help="exit once no runnable job is left"
        )
        parser.add_argument(
            "--max-jobs",
            "--max_jobs",
            dest="max_jobs",
            type=int,
            default=None,
            help="exit 0 after running this many jobs (to recycle the process)",
        )
        parser.add_argument(
            "--no-listen",
            dest="listen",
            action="store_false",
            default=None,
            help="poll instead of LISTEN/NOTIFY (for PgBouncer in transaction mode)",
        )

    def execute(self, *args, **options):
        # The system checks need the database (MySQL's read its version): a worker
        # started while the database is down waits for it instead of crashing.
        if not wait_for_database(options.get("verbosity", 1)):
            return None
        return super().execute(*args, **options)

    def handle(self, *args, **options):
        queue_names = options["queue_name"]
        if isinstance(queue_names, str):  # call_command("worker", queue_name="q")
            queue_names = [queue_names]
        try:
            worker = Worker(
                queue_names or ["default"],
                options["rate_limit"],
                drain=options["drain"],
                listen=options["listen"],
                max_jobs=options.get("max_jobs"),
            )
        except ValueError as error:
            raise CommandError(str(error))
        queues = '", "'.join(worker.queue_names)
        self.stdout.write(
            f'Starting job worker for queue "{queues}" with rate limit of one job per '
            f"{worker.rate_limit_in_seconds} second(s)"
        )
        if options["dry_run"]:
            return
        worker.run()
        if options["verbosity"] > 1:
            self.stdout.write("Worker stopped")
