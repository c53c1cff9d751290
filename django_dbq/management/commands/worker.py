"""``manage.py worker [queue_name ...]``: run a worker until SIGTERM/SIGINT (or ``--drain``).

What the worker logs, and where, follows ``--verbosity``:

- 0: errors only; 1 (the default): what the worker does (INFO); 2 and 3: debug detail.
  The level is set on the ``django_dbq`` logger for the run and restored after it. At
  the default verbosity a level the project's ``LOGGING`` set for ``django_dbq`` is
  kept, so a project that chose WARNING keeps it; an explicit ``-v 0`` or ``-v 2``
  wins over ``LOGGING``, as a flag typed for one run should.
- Where: the project's handlers, if its ``LOGGING`` gives ``django_dbq`` (or a
  parent it propagates to, such as the root logger) any. Only when it gives none
  does the command add a handler of its own that writes to the command's stderr,
  for the run. That is how Django's ``runserver`` shows its request lines: the
  library brings a console handler for its own logger and the project may replace
  it. Adding one next to a project's handler would print every line twice, and
  without any, Python would show warnings alone, bare (its "last resort").
"""

import logging

from django.core.management.base import BaseCommand, CommandError, OutputWrapper

from django_dbq.outages import wait_for_database
from django_dbq.worker import Worker

from . import _options
from ._logging import library_logging

__all__ = ["Command", "Worker"]  # Worker is importable from here, as in django-db-queue 3.x

logger = logging.getLogger(__name__)


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
            "--wait-retries",
            "--wait_retries",
            dest="wait_retries",
            action="store_true",
            help="with --drain: also wait for failed or snoozed jobs to be retried (test suites)",
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
        # Bad options are refused before anything else, even while the database is down.
        check_options(options)
        if options.get("stderr"):  # as super().execute() will: log lines go there too
            self.stderr = OutputWrapper(options["stderr"])
        with library_logging(options.get("verbosity", 1), self):
            # The system checks need the database (MySQL's read its version): a worker
            # started while the database is down waits for it instead of crashing.
            if not wait_for_database(options.get("verbosity", 1)):
                return None
            return super().execute(*args, **options)

    def handle(self, *args, **options):
        options = check_options(options)
        if options["wait_retries"] and not options["drain"]:
            raise CommandError("--wait-retries goes with --drain.")
        try:
            worker = Worker(
                options["queue_name"],
                options["rate_limit"],
                drain=options["drain"],
                wait_retries=options["wait_retries"],
                listen=options["listen"],
                max_jobs=options["max_jobs"],
            )
        except ValueError as error:  # checked above; kept for anything the Worker adds
            raise CommandError(str(error))
        queues = '", "'.join(worker.queue_names)
        self.stdout.write(
            f'Starting job worker for queue "{queues}" with rate limit of one job per '
            f"{worker.rate_limit_in_seconds} second(s)"
        )
        logger.debug(
            "Worker %s: claims up to %s job(s) at a time, lease %s s, poll every %s s, listen %s",
            worker.worker_id,
            worker.batch_size,
            worker.lease_seconds,
            worker.poll_interval,
            worker.listen,
        )
        if options["dry_run"]:
            return
        worker.run()
        if options["verbosity"] > 1:
            self.stdout.write("Worker stopped")


def check_options(options: dict) -> dict:
    """The options with queue names as a list; CommandError naming the first bad one."""
    checked = dict(options)
    checked["queue_name"] = _options.queue_names("queue_name", options.get("queue_name"))
    checked["rate_limit"] = _options.number("--rate_limit", options.get("rate_limit", 0))
    if options.get("max_jobs") is not None:
        _options.whole_number("--max-jobs", options["max_jobs"])
    checked.setdefault("max_jobs", None)
    return checked
