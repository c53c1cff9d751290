"""What ``pause_queue`` and ``resume_queue`` share: parse the names, change, say what changed."""

from __future__ import annotations

from collections.abc import Callable

from django.core.management.base import BaseCommand

from . import _options


class QueueStateCommand(BaseCommand):
    """Applies :attr:`change` (``queues.pause`` or ``queues.resume``) to the queues named."""

    requires_system_checks = []  # needs no task code
    change: Callable[..., list[str]]
    done = ""  # "paused" / "resumed"
    unchanged = ""  # what a queue already in that state is said to be

    def add_arguments(self, parser):
        parser.add_argument("queue_name", nargs="+", help="names of the queues")

    def handle(self, *args, **options):
        # Every name is checked before anything is written (CommandError, nothing changed).
        names = [_options.queue_name("queue_name", name) for name in options["queue_name"]]
        changed = set(self.change(names))
        if options["verbosity"] < 1:
            return
        for name in dict.fromkeys(names):
            self.stdout.write(f"{name} {self.done if name in changed else self.unchanged}")
