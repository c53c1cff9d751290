"""One job's definition (:class:`JobDefinition`), the problems one can have, loading its code.

Nothing here reads settings beyond the defaults in :mod:`django_dbq.conf`:
:mod:`django_dbq.jobs_setting` builds definitions from ``JOBS``, and the Tasks
backend builds them for Django Tasks.
"""

from __future__ import annotations

import functools
import random
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from django.core.exceptions import ImproperlyConfigured
from django.utils.module_loading import import_string

from . import conf

HOOK_KEYS = ("creation_hook", "pre_task_hook", "post_task_hook", "failure_hook")
# Job names with this prefix are Django Tasks (see django_dbq.tasks_backend).
DJANGO_TASK_PREFIX = "django.tasks:"


class DefinitionError(ImproperlyConfigured):
    """One problem in ``JOBS`` (or ``DBQ_SCHEDULE``); ``check_id`` and ``hint`` feed the checks.

    ``fatal`` problems make the entry unusable; the others (a malformed path) are
    reported by the checks but leave the job creatable.
    """

    def __init__(self, message: str, check_id: str, hint: str = "", *, fatal: bool = True):
        super().__init__(message)
        self.check_id = check_id
        self.hint = hint
        self.fatal = fatal


def _setting(key: str) -> Any:
    """A field whose default is read from its ``DBQ_*`` setting when a definition is made."""
    return field(default_factory=functools.partial(conf.job_default, key))


@dataclass(frozen=True)
class JobDefinition:
    name: str
    tasks: tuple[str, ...]
    creation_hook: str | None = None
    pre_task_hook: str | None = None
    post_task_hook: str | None = None
    failure_hook: str | None = None
    max_attempts: int = _setting("max_attempts")
    # RetryLater ("snooze") requests honoured per job; past that a snooze is a failed attempt.
    max_snoozes: int = _setting("max_snoozes")
    retry_backoff: str = _setting("retry_backoff")
    retry_delay: float = _setting("retry_delay")
    retry_delay_max: float = _setting("retry_delay_max")
    timeout: float | None = None
    # Per-step limits ({task path: seconds}) that override ``timeout`` for those steps.
    step_timeouts: tuple[tuple[str, float], ...] = ()
    # The most jobs of this definition with one ``concurrency_key`` running at once,
    # unless the job gives its own limit (see django_dbq.keys).
    concurrency_per_key: int = 1
    # Django Tasks jobs run their step through this instead of calling the path.
    runner: Callable[[Any, str], Any] | None = field(default=None, compare=False)

    def next_task_after(self, current_task: str | None) -> str:
        """The task after ``current_task`` (the first one for None); ``""`` after the last."""
        if not current_task:
            return self.tasks[0]
        position = self.tasks.index(current_task)
        return self.tasks[position + 1] if position + 1 < len(self.tasks) else ""

    def retry_delay_for(self, attempt: int) -> float:
        """Seconds to wait before attempt ``attempt + 1``.

        Exponential: ``retry_delay * 2 ** (attempt - 1)`` capped at ``retry_delay_max``, then
        jittered to between half and all of that, so failed jobs do not retry in lockstep.
        """
        if self.retry_backoff == "fixed":
            return self.retry_delay
        doublings = min(max(attempt - 1, 0), 64)  # past that the cap applies anyway
        ceiling = min(self.retry_delay_max, self.retry_delay * 2.0**doublings)
        return random.uniform(ceiling / 2, ceiling)

    def timeout_for(self, step: str) -> float | None:
        """Seconds ``step`` may run before it is interrupted (None: no limit)."""
        for path, seconds in self.step_timeouts:
            if path == step:
                return seconds
        return self.timeout

    def hook(self, kind: str) -> Callable | None:
        path = getattr(self, kind)
        return load(path) if path else None


@functools.lru_cache(maxsize=1024)
def load(path: str) -> Callable:
    """Import a task or hook by its dotted path (cached: the hot path calls it per step)."""
    try:
        return import_string(path)
    except ImportError as error:
        message = f"task or hook path {path!r} cannot be imported: {error}"
        raise type(error)(message, name=error.name, path=error.path) from error
