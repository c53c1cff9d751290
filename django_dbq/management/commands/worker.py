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

``--concurrency N`` runs up to N jobs at once. ``--mode processes`` (the default when
N > 1) forks N worker processes under a supervisor (:mod:`django_dbq.worker.supervisor`);
``--mode threads`` runs N threads in this process; ``--mode async`` runs up to N jobs
on one event loop in this process (:mod:`django_dbq.worker.asyncmode`). N = 1 without
``--mode`` is the one worker in this process that django-db-queue 3.x ran.
"""

import logging
from typing import Any

from django.core.management.base import BaseCommand, CommandError, OutputWrapper

from django_dbq.worker import Worker
from django_dbq.worker.asyncmode import AsyncWorker
from django_dbq.worker.outages import wait_for_database
from django_dbq.worker.shutdown import SignalHandlers
from django_dbq.worker.supervisor import Supervisor
from django_dbq.worker.threads import ThreadedWorker

from . import _options
from ._logging import library_logging

__all__ = ["Command", "Worker"]  # Worker is importable from here, as in django-db-queue 3.x

logger = logging.getLogger(__name__)

MODES = ("processes", "threads", "async")


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
        parser.add_argument(
            "--concurrency",
            type=int,
            default=1,
            help="run up to N jobs at once (default 1: one at a time, in this process)",
        )
        parser.add_argument(
            "--mode",
            choices=MODES,
            default=None,
            help="how --concurrency runs jobs: 'processes' (the default: a supervisor forks N "
            "worker processes; any task), 'threads' (N threads in this process; IO-bound tasks) "
            "or 'async' (N jobs on one event loop in this process; async def tasks)",
        )
        parser.add_argument(
            "--metrics-port",
            "--metrics_port",
            dest="metrics_port",
            type=int,
            default=None,
            help="serve this process's Prometheus counters on this port (needs the "
            "'prometheus' extra; one process: not with the processes mode)",
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
            worker, supervisor = make_workers(options)
        except ValueError as error:  # checked above; kept for anything the Worker adds
            raise CommandError(str(error))
        mode = "processes" if supervisor is not None else options["mode"]
        queues = '", "'.join(worker.queue_names)
        early = None
        if supervisor is None and not options["dry_run"]:
            # A stop asked for once the start line is out (before run() installs the same
            # handler) is a graceful stop too, not the default end by signal, in every mode.
            early = SignalHandlers(worker.shutdown)
        self.stdout.write(
            f'Starting job worker for queue "{queues}" with rate limit of one job per '
            f"{options['rate_limit']} second(s){running_in(mode, options['concurrency'])}"
        )
        logger.debug(
            "Worker %s: claims up to %s job(s) at a time, lease %s s, poll every %s s, listen %s",
            worker.worker_id,
            worker.pacing.max_batch,
            worker.lease_seconds,
            worker.poll_interval,
            worker.listen,
        )
        if options["dry_run"]:
            return
        if options["metrics_port"] is not None:
            serve_metrics(
                options["metrics_port"],
                queues=",".join(worker.queue_names),
                mode=mode or "single",
                slots=options["concurrency"],
            )
        if supervisor is not None:
            if supervisor.run():
                raise CommandError("A worker process did not exit cleanly (see the log).")
        else:
            try:
                worker.run()
            finally:
                if early is not None:
                    early.restore()
        if options["verbosity"] > 1:
            self.stdout.write("Worker stopped")


def make_workers(options: dict) -> tuple[Any, Supervisor | None]:
    """The worker to run here, or the supervisor of N processes and a twin of its children.

    N = 1 without ``--mode`` is the single worker of django-db-queue 3.x; N > 1 without
    ``--mode`` is the processes mode.
    """
    concurrency, mode = options["concurrency"], options["mode"]
    queue_names, rate_limit = options["queue_name"], options["rate_limit"]
    worker_options = {
        "drain": options["drain"],
        "wait_retries": options["wait_retries"],
        "listen": options["listen"],
        "max_jobs": options["max_jobs"],
    }
    if mode == "threads":
        worker = ThreadedWorker(queue_names, rate_limit, concurrency=concurrency, **worker_options)
        return worker, None
    if mode == "async":
        return AsyncWorker(queue_names, rate_limit, concurrency=concurrency, **worker_options), None
    if mode is None and concurrency == 1:
        return Worker(queue_names, rate_limit, **worker_options), None

    def child_worker(worker_id: str) -> Worker:
        # Each of N processes waits N intervals between its starts: the command as a whole
        # keeps to about one start per interval.
        return Worker(queue_names, rate_limit * concurrency, worker_id=worker_id, **worker_options)

    # A child that ends by itself (--drain, --max-jobs, each its own) is done, not replaced.
    done_after_exit = bool(options["drain"] or options["max_jobs"])
    supervisor = Supervisor(concurrency, child_worker, replace_clean_exits=not done_after_exit)
    return child_worker(supervisor.name), supervisor


def serve_metrics(port: int, **worker: Any) -> None:
    try:
        from django_dbq.metrics.serve import serve_worker_metrics
    except ImportError:
        raise CommandError(
            "--metrics-port needs prometheus-client: pip install 'django-dbq[prometheus]'."
        )
    try:
        serve_worker_metrics(port, **worker)
    except OSError as error:
        raise CommandError(f"--metrics-port {port}: cannot listen ({error.strerror or error}).")
    logger.info("Serving this worker's metrics on port %s (/metrics)", port)


def running_in(mode: str | None, concurrency: int) -> str:
    """The start line's end: nothing for the single worker, as django-db-queue 3.x printed it."""
    if mode is None:
        return ""
    if mode == "threads":
        return f" in {concurrency} thread{'s' if concurrency > 1 else ''}"
    if mode == "async":
        return f" with up to {concurrency} job{'s' if concurrency > 1 else ''} on an event loop"
    return f" in {concurrency} worker process{'es' if concurrency > 1 else ''}"


def check_options(options: dict) -> dict:
    """The options with queue names as a list; CommandError naming the first bad one."""
    checked = dict(options)
    checked["queue_name"] = _options.queue_names("queue_name", options.get("queue_name"))
    checked["rate_limit"] = _options.number("--rate_limit", options.get("rate_limit", 0))
    if options.get("max_jobs") is not None:
        _options.whole_number("--max-jobs", options["max_jobs"])
    checked.setdefault("max_jobs", None)
    checked["concurrency"] = _options.whole_number("--concurrency", options.get("concurrency", 1))
    checked["mode"] = options.get("mode")
    if checked["mode"] not in (None, *MODES):
        raise CommandError(f"--mode must be one of {', '.join(MODES)}, not {checked['mode']!r}.")
    checked["metrics_port"] = options.get("metrics_port")
    if checked["metrics_port"] is not None:
        port = _options.whole_number("--metrics-port", checked["metrics_port"])
        if port > 65535:
            raise CommandError(f"--metrics-port must be a port number (1 to 65535), not {port}.")
        if checked["mode"] == "processes" or (
            checked["mode"] is None and checked["concurrency"] > 1
        ):
            raise CommandError(
                "--metrics-port serves one process's counters: use --mode threads or async, "
                "or run one worker per port."
            )
    return checked
