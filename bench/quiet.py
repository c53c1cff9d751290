"""Waiting for the machine to be quiet before a measurement.

Other work on a 2-core machine (a test suite, a browser) skews every number, so
before each run the orchestrator samples how busy the CPUs are (from
``/proc/stat``) and waits, a bounded time, until they are mostly idle. The busy
share measured last is stored with the run.
"""

from __future__ import annotations

import time
from pathlib import Path


def _cpu_times() -> tuple[int, int]:
    fields = [int(v) for v in Path("/proc/stat").read_text().split("\n", 1)[0].split()[1:]]
    idle = fields[3] + fields[4]  # idle + iowait
    return sum(fields), idle


def busy_share(seconds: float = 1.0) -> float:
    """Share of all CPUs' time spent busy over the next ``seconds``."""
    total0, idle0 = _cpu_times()
    time.sleep(seconds)
    total1, idle1 = _cpu_times()
    spent = total1 - total0
    return round(1.0 - (idle1 - idle0) / spent, 3) if spent else 0.0


def wait_quiet(threshold: float = 0.25, max_wait: float = 90.0) -> float:
    """Wait until the CPUs are less than ``threshold`` busy, at most ``max_wait`` seconds."""
    deadline = time.monotonic() + max_wait
    busy = busy_share()
    while busy >= threshold and time.monotonic() < deadline:
        busy = busy_share(2.0)
    return busy
