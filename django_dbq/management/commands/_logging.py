"""The worker command's logging: ``--verbosity`` sets how much of ``django_dbq`` is shown.

See the ``worker`` command's docstring for the rules; this module applies them.
"""

from __future__ import annotations

import logging
from collections.abc import Iterator
from contextlib import contextmanager

from django.core.management.base import BaseCommand

LIBRARY_LOGGER = "django_dbq"
FORMAT = "[%(asctime)s] %(levelname)s %(message)s"


class CommandStderrHandler(logging.Handler):
    """Writes records to a command's stderr, coloured by level as Django colours its output.

    It reads the command's ``stderr`` and ``style`` at each record: ``execute()``
    replaces them (``stderr=`` of ``call_command``, ``--no-color``).
    """

    def __init__(self, command: BaseCommand):
        super().__init__()
        self.command = command
        self.setFormatter(logging.Formatter(FORMAT))

    def emit(self, record: logging.LogRecord) -> None:
        try:
            message = self.format(record)
            stderr, styles = self.command.stderr, self.command.style
            # Plain below WARNING (OutputWrapper would colour every stderr line as an
            # error), and plain into a file or pipe.
            style = str
            if stderr.isatty() and record.levelno >= logging.ERROR:
                style = styles.ERROR
            elif stderr.isatty() and record.levelno >= logging.WARNING:
                style = styles.WARNING
            stderr.write(message, style_func=style)
            stderr.flush()
        except Exception:
            self.handleError(record)


def level_for(verbosity: int, configured: int) -> int:
    """The ``django_dbq`` logger level for ``--verbosity`` (``configured``: the project's)."""
    if verbosity <= 0:
        return logging.ERROR
    if verbosity >= 2:
        return logging.DEBUG
    # The default verbosity keeps a level the project chose; otherwise, INFO.
    return configured if configured != logging.NOTSET else logging.INFO


@contextmanager
def library_logging(verbosity: int, command: BaseCommand) -> Iterator[None]:
    """Apply ``verbosity`` to the ``django_dbq`` logger while the block runs, then restore it."""
    logger = logging.getLogger(LIBRARY_LOGGER)
    level = logger.level
    # hasHandlers() looks up the hierarchy as a record would: any handler the
    # project configured (on django_dbq, or on a parent it propagates to) shows the
    # records already, and a second one would print every line twice.
    handler = None if logger.hasHandlers() else CommandStderrHandler(command)
    logger.setLevel(level_for(verbosity, level))
    if handler is not None:
        logger.addHandler(handler)
    try:
        yield
    finally:
        if handler is not None:
            logger.removeHandler(handler)
        logger.setLevel(level)
