"""The ``io`` scenario: jobs that wait 20 ms without using the CPU, drained by one command.

Each job's task takes a timestamp (:func:`benchkit.stamp.hit`) and then waits
:data:`IO_WAIT_SECONDS` (``time.sleep`` in a sync task, ``asyncio.sleep`` in an
async one), as a task that calls an HTTP API or sends an email mostly waits. N jobs
are bulk-inserted, then one worker command is started with a concurrency C and
runs until the queue is drained. Measured while it runs:

- jobs/s: N / (the moment the driver sees all N jobs complete - the first task start).
  The end is polled from the database every few milliseconds: a supervisor's
  children leave with ``os._exit``, so their last stamps may never reach the disk;
  their first one always does (it is written at once).
- memory: the peak of the summed VmRSS of the command's whole process tree (a
  supervisor and its children), and of its summed PSS from ``smaps_rollup``, which
  splits the pages that forked children share instead of counting them in each.
- database connections: the peak count of client backends on the system's database,
  minus those that were open before the worker started (the driver's own).

Standard library only, like the rest of :mod:`benchkit`.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from benchkit import harness
from benchkit.stamp import read_stamps

IO_WAIT_SECONDS = 0.02
SAMPLE_EVERY = 0.1  # seconds between memory and connection samples
POLL_EVERY = 0.005  # seconds between polls for the completed count
EXIT_GRACE = 30.0  # a drained command gets this long to exit by itself

# Client backends on the caller's database, the caller's own excluded (PostgreSQL).
BACKENDS_SQL = (
    "SELECT pid FROM pg_stat_activity WHERE datname = current_database()"
    " AND backend_type = 'client backend' AND pid <> pg_backend_pid()"
)


def process_tree(pid: int) -> list[int]:
    """``pid`` and all its descendants that are alive now."""
    found = [pid]
    for parent in found:  # the list grows while it is walked: breadth first
        for children in Path(f"/proc/{parent}/task").glob("*/children"):
            try:
                found += [int(child) for child in children.read_text().split()]
            except OSError:  # the thread or the process ended meanwhile
                continue
    return found


def read_pss_kib(pid: int) -> int | None:
    try:
        for line in Path(f"/proc/{pid}/smaps_rollup").read_text().splitlines():
            if line.startswith("Pss:"):
                return int(line.split()[1])
    except OSError:  # gone, or not readable on this kernel or for this user
        return None
    return None


@dataclass
class Peaks:
    """The largest totals seen over the samples of one run."""

    rss_kib: int = 0
    pss_kib: int | None = None
    processes: int = 0
    connections: int = 0

    def sample(self, root: int, connections: int) -> None:
        pids = process_tree(root)
        rss = [harness.read_rss_kib(pid) for pid in pids]
        pss = [read_pss_kib(pid) for pid in pids]
        self.rss_kib = max(self.rss_kib, sum(r for r in rss if r))
        if all(p is not None for p in pss):  # a partial sum would understate it
            self.pss_kib = max(self.pss_kib or 0, sum(p for p in pss if p))
        self.processes = max(self.processes, sum(1 for r in rss if r))
        self.connections = max(self.connections, connections)


def io(
    system: harness.System,
    scratch: Path,
    n: int,
    concurrency: int,
    mode: str | None,
    max_seconds: float,
) -> dict[str, Any]:
    """N waiting jobs drained by one worker command at ``concurrency`` (and ``mode``)."""
    system.reset()
    # The async mode runs the same wait as an async def task (bench/tasks.py).
    system.enqueue_bulk(n, "io_async" if mode == "async" else "io")
    stamps_dir = scratch / "stamps"
    stamps_dir.mkdir()
    before = system.backend_pids()
    started = time.time()
    spec = system.worker(drain=True, concurrency=concurrency, mode=mode)
    workers = harness.Workers(spec, 1, scratch, {"BENCH_STAMP_DIR": str(stamps_dir)})
    peaks = Peaks()
    done, done_at, next_sample = 0, None, 0.0
    deadline = started + max_seconds
    try:
        while time.time() < deadline:
            if time.time() >= next_sample:
                peaks.sample(workers.procs[0].pid, len(system.backend_pids() - before))
                next_sample = time.time() + SAMPLE_EVERY
            done = system.completed()
            if done >= n:
                done_at = time.time()
                break
            if not workers.alive():  # exited before the end: its log says why
                break
            time.sleep(POLL_EVERY)
        if done_at is None and (done := system.completed()) >= n:
            done_at = time.time()  # it finished between the last poll and its exit
        exited = workers.wait(min(deadline, time.time() + EXIT_GRACE))
    finally:
        workers.stop()
    stamps = read_stamps(stamps_dir)
    first = min((s["first"] for s in stamps), default=None)
    end = done_at or time.time()
    result: dict[str, Any] = {
        "jobs": done,
        "concurrency": concurrency,
        "mode": mode,
        "drained": done_at is not None,
        "exited": exited,
        "wall_seconds": round(time.time() - started, 3),
        "errors": workers.problems(),
        "rss_mib": round(peaks.rss_kib / 1024, 1) if peaks.rss_kib else None,
        "pss_mib": round(peaks.pss_kib / 1024, 1) if peaks.pss_kib else None,
        "processes": peaks.processes,
        "connections": peaks.connections,
    }
    if first is not None and end > first and done:
        result["seconds"] = round(end - first, 4)
        result["jobs_per_s"] = round(done / (end - first), 2)
    return result
