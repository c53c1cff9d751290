"""What a job's row says about its failures: the ``errors`` history and the ``error`` text.

Whatever a task raised must be storable on every database: PostgreSQL refuses
NUL characters in text and JSON, SQLite and MariaDB refuse lone surrogates. A
failure that cannot be written would leave the job claimed until its lease
lapses, run it again and lose the real error, so every text is made storable here.
"""

from __future__ import annotations

import traceback
from typing import Any

from django.utils import timezone

from . import conf


def storable_text(text: Any) -> str:
    """``text`` as a string every database stores: NULs and lone surrogates escaped."""
    text = str(text)
    if "\x00" in text:
        text = text.replace("\x00", "\\x00")
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        text = text.encode("utf-8", "backslashreplace").decode("utf-8")
    return text


def describe(error: BaseException) -> str:
    """``str(error)``, or a stand-in when the exception cannot even say what it is."""
    try:
        return str(error)
    except Exception as broken:
        return f"<str() of the exception raised {type(broken).__name__}>"


def error_record(job: Any, step: str, error: BaseException | None, message: str = "") -> dict:
    """One entry of ``Job.errors``: what failed, where, on which attempt, and when."""
    if error is None:
        kind, text, trace = "WorkerLost", message, ""
    else:
        kind, text = type(error).__name__, message or describe(error)
        try:
            trace = "".join(traceback.format_exception(error))
        except Exception:
            trace = ""
    return {
        "attempt": job.attempts,
        "step": storable_text(step),
        "type": storable_text(kind),
        "message": storable_text(text),
        "traceback": storable_text(trace[-conf.get("DBQ_TRACEBACK_CHARS") :]),
        "at": timezone.now().isoformat(),
        # The importable class path and the worker (read by the Django Tasks backend).
        "class": f"{type(error).__module__}.{type(error).__qualname__}" if error else "",
        "worker": job.worker_id,
    }


def error_values(job: Any, record: dict) -> dict:
    """The ``error``/``errors`` column values after adding ``record`` (history bounded)."""
    history = (list(job.errors or []) + [record])[-conf.get("DBQ_ERROR_HISTORY") :]
    text = f"{record['type']}: {record['message']}"
    if record["traceback"]:
        text += f"\n{record['traceback']}"
    return {"errors": history, "error": text}
