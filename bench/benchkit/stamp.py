"""Cheap per-process timestamps taken by the benchmark tasks.

Each task calls :func:`hit`. The first call records the start of the first task
in this process; every call records its own start time and bumps a counter. The
numbers go to ``$BENCH_STAMP_DIR/<pid>.json`` every ``FLUSH_EVERY`` calls and at
interpreter exit, so a worker that is killed loses at most the last few.

:func:`record_pickup` appends the wall-clock time at which a task started to
``$BENCH_PICKUP_FILE`` (one line per task), for the pickup-latency scenario.
"""

from __future__ import annotations

import atexit
import json
import os
import threading
import time
from pathlib import Path

FLUSH_EVERY = 1000

_state = {"first": 0.0, "last": 0.0, "count": 0}
# Tasks run in threads in some workers (our threads mode): the count and the file
# write, which shares one temporary name per process, are kept to one thread at a time.
_lock = threading.Lock()


def _flush() -> None:
    directory = os.environ.get("BENCH_STAMP_DIR")
    if not directory or not _state["count"]:
        return
    target = Path(directory) / f"{os.getpid()}.json"
    tmp = target.with_suffix(".tmp")
    tmp.write_text(json.dumps(_state))
    tmp.replace(target)


def hit() -> None:
    """Note that a task starts now in this process."""
    now = time.time()
    with _lock:
        if not _state["count"]:
            _state["first"] = now
            atexit.register(_flush)
        _state["last"] = max(_state["last"], now)
        _state["count"] += 1
        if _state["count"] % FLUSH_EVERY == 1:
            _flush()


def record_pickup() -> None:
    """Append the current time to the pickup file."""
    now = time.time()
    path = os.environ.get("BENCH_PICKUP_FILE")
    if path:
        with open(path, "a", encoding="ascii") as handle:
            handle.write(f"{now:.6f}\n")


def read_stamps(directory: Path) -> list[dict[str, float]]:
    """Every process's stamps found in ``directory``."""
    return [json.loads(p.read_text()) for p in sorted(directory.glob("*.json"))]
