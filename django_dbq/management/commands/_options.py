"""Checks for command options: a bad value is a one-line CommandError naming the option.

``call_command(..., name=value)`` skips argparse's type conversion, so every check
also copes with a value of the wrong type (a string for a number, say).
"""

from __future__ import annotations

import math
from typing import Any

from django.core.management.base import CommandError

from ... import conf


def number(option: str, value: Any, *, positive: bool = False) -> float:
    """``value`` as a finite number, at least 0 (greater than 0 if ``positive``)."""
    bound = "greater than 0" if positive else "of at least 0"
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise CommandError(f"{option} must be a number {bound}, not {value!r}.")
    if not math.isfinite(value) or value < 0 or (positive and value == 0):
        raise CommandError(f"{option} must be a number {bound}, not {value!r}.")
    return value


def whole_number(option: str, value: Any) -> int:
    """``value`` as an ``int`` of at least 1."""
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise CommandError(f"{option} must be a whole number of at least 1, not {value!r}.")
    return value


def queue_name(option: str, value: Any) -> str:
    """``value`` as a queue name a worker can serve (:func:`django_dbq.conf.is_queue_name`)."""
    if not conf.is_queue_name(value):
        shown = f"{len(value)} characters" if isinstance(value, str) and value else repr(value)
        raise CommandError(
            f"{option} must be 1 to {conf.QUEUE_NAME_MAX_LENGTH} characters, not {shown}."
        )
    return value


def queue_names(option: str, value: Any, *, default: str = "default") -> list[str]:
    """The queue names given (one name or a list); ``[default]`` when none are."""
    if isinstance(value, str):
        value = [value]
    if not isinstance(value, list | tuple) and value is not None:
        raise CommandError(f"{option} must be queue names, not {value!r}.")
    return [queue_name(option, name) for name in value or []] or [default]
