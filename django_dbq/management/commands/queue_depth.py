"""``manage.py queue_depth [queue_name ...] [--exclude_future_jobs] [--format json] [--watch N]``.

Paused queues are marked (django-db-queue 3.x's output is unchanged for the others):
``emails=3(paused)`` in the text form, ``"paused": ["emails"]`` in JSON (the paused
queues among those shown; the key is there only when one is).

With ``--watch N`` it prints the depths again every N seconds until SIGINT (Ctrl-C)
or SIGTERM, then exits 0 without a traceback: stopping is the normal way to end it.
"""

import json
import signal
import threading
from collections.abc import Iterator
from contextlib import contextmanager

from django.core.management.base import BaseCommand, CommandError

from django_dbq import queues
from django_dbq.models import Job

from . import _options

FORMATS = ("text", "json")


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
        parser.add_argument("--format", choices=FORMATS, default="text")
        parser.add_argument(
            "--watch",
            type=float,
            default=None,
            metavar="SECONDS",
            help="print the depths again every SECONDS until interrupted",
        )

    def handle(self, *args, **options):
        queue_names = _options.queue_names("queue_name", options["queue_name"])
        if options["format"] not in FORMATS:  # call_command(format=...) skips argparse
            raise CommandError(
                f"--format must be one of {', '.join(FORMATS)}, not {options['format']!r}."
            )
        watch = options.get("watch")
        if watch is not None:
            watch = _options.number("--watch", watch, positive=True)
        if watch is None:
            self.print_depths(queue_names, options)
            return
        with stop_on_signals() as stop:
            while not stop.is_set():
                self.print_depths(queue_names, options)
                stop.wait(watch)

    def print_depths(self, queue_names: list[str], options: dict) -> None:
        depths = Job.get_queue_depths(exclude_future_jobs=options["exclude_future_jobs"])
        ordered = {name: depths.get(name, 0) for name in queue_names}
        paused = set(queues.paused_queues(queue_names))
        if options["format"] == "json":
            output = {"queue_depths": ordered}
            if paused:
                output["paused"] = [name for name in ordered if name in paused]
            self.stdout.write(json.dumps(output))
        else:
            pairs = " ".join(
                f"{name}={count}{'(paused)' if name in paused else ''}"
                for name, count in ordered.items()
            )
            self.stdout.write(f"event=queue_depths {pairs}")
        self.stdout.flush()  # a pipe would hold the lines of a long watch


@contextmanager
def stop_on_signals() -> Iterator[threading.Event]:
    """An event that SIGINT or SIGTERM sets (instead of KeyboardInterrupt or death)."""
    stop = threading.Event()
    if threading.current_thread() is not threading.main_thread():
        yield stop  # only the main thread may set signal handlers
        return
    previous = {
        sig: signal.signal(sig, lambda *_: stop.set()) for sig in (signal.SIGINT, signal.SIGTERM)
    }
    try:
        yield stop
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)
