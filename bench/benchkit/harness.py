"""The scenarios, written once against a small :class:`System` interface.

Each system under test (our library, django-db-queue 3.x, Procrastinate) has a
driver script that runs in that system's own virtualenv, implements
:class:`System` and calls :func:`main`. The orchestrator (``bench/run.py``) runs
the driver as a subprocess and reads the one ``BENCH_RESULT`` line it prints.

Every wait here is bounded by a deadline; worker processes are always stopped
(SIGTERM, then SIGKILL after a grace period) before a scenario returns.
"""

from __future__ import annotations

import json
import os
import random
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol

from benchkit.stamp import read_stamps

RESULT_PREFIX = "BENCH_RESULT "
STOP_GRACE_SECONDS = 20.0


@dataclass
class WorkerSpec:
    """How to start one worker process."""

    argv: list[str]
    env: dict[str, str] = field(default_factory=dict)
    cwd: str | None = None


class System(Protocol):
    """What a driver implements for the scenarios below."""

    name: str
    can_drain: bool  # does the worker exit by itself once the queue is empty?
    poll_cycle: float  # seconds; jitter between latency samples to avoid aliasing

    def reset(self) -> None: ...
    def enqueue_bulk(self, n: int, kind: str) -> None: ...
    def enqueue_one(self, kind: str) -> float: ...  # returns time.time() after commit
    def worker(self, drain: bool, concurrency: int = 1, mode: str | None = None) -> WorkerSpec: ...
    def completed(self) -> int: ...
    def fill_backlog(self, finished: int, queued: int) -> None: ...
    def backend_pids(self) -> set[int]: ...  # PostgreSQL systems, for the io scenario


class Workers:
    """K worker subprocesses with their logs in a scratch directory."""

    def __init__(self, spec: WorkerSpec, k: int, scratch: Path, extra_env: dict[str, str]):
        env = {**os.environ, **spec.env, **extra_env}
        self.logs = [scratch / f"worker-{i}.log" for i in range(k)]
        self.procs: list[subprocess.Popen[bytes]] = []
        for log in self.logs:
            with open(log, "wb") as out:
                self.procs.append(
                    subprocess.Popen(
                        spec.argv, env=env, cwd=spec.cwd, stdout=out, stderr=subprocess.STDOUT
                    )
                )

    def alive(self) -> bool:
        return any(p.poll() is None for p in self.procs)

    def wait(self, deadline: float) -> bool:
        """Wait until every worker has exited; False if the deadline came first."""
        while self.alive():
            if time.time() >= deadline:
                return False
            time.sleep(0.02)
        return True

    def stop(self) -> None:
        for proc in self.procs:
            if proc.poll() is None:
                proc.send_signal(signal.SIGTERM)
        deadline = time.time() + STOP_GRACE_SECONDS
        for proc in self.procs:
            try:
                proc.wait(timeout=max(0.1, deadline - time.time()))
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait(timeout=10)

    def problems(self) -> list[str]:
        """The tail of the log of every worker that exited with a non-zero code."""
        out = []
        for proc, log in zip(self.procs, self.logs, strict=True):
            if proc.returncode not in (0, -signal.SIGTERM):
                tail = log.read_text(errors="replace")[-800:]
                out.append(f"exit {proc.returncode}: {tail}")
        return out


def percentile(values: list[float], q: float) -> float:
    """Linear-interpolated percentile, ``q`` in [0, 100]."""
    ordered = sorted(values)
    if len(ordered) == 1:
        return ordered[0]
    pos = (len(ordered) - 1) * q / 100.0
    low = int(pos)
    high = min(low + 1, len(ordered) - 1)
    return ordered[low] + (ordered[high] - ordered[low]) * (pos - low)


def read_rss_kib(pid: int) -> int | None:
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    except (FileNotFoundError, ProcessLookupError):
        return None
    return None


def _run_workers(
    system: System,
    k: int,
    scratch: Path,
    max_seconds: float,
    window: float | None = None,
    tasks_per_job: int = 1,
) -> dict[str, Any]:
    """Start K workers on whatever is queued; return the timing of what they did.

    The workers run until they drain the queue, or for ``window`` seconds after
    the first task started (start-up time is not counted), and never longer
    than ``max_seconds`` after they were spawned.
    """
    stamps_dir = scratch / "stamps"
    stamps_dir.mkdir()
    before = system.completed()
    started = time.time()
    env = {"BENCH_STAMP_DIR": str(stamps_dir)}
    workers = Workers(system.worker(drain=system.can_drain and window is None), k, scratch, env)
    drained = False
    try:
        deadline = started + max_seconds
        while time.time() < deadline:
            if not workers.alive():
                drained = True
                break
            if window is not None and any(stamps_dir.glob("*.json")):
                deadline = min(deadline, time.time() + window)
                window = None  # the window is set; now wait it out
            time.sleep(0.02)
    finally:
        workers.stop()
    done = system.completed() - before
    stamps = read_stamps(stamps_dir)
    result: dict[str, Any] = {
        "jobs": done,
        "workers": k,
        "drained": drained,
        "wall_seconds": round(time.time() - started, 3),
        "errors": workers.problems(),
        "jobs_per_s": _rate(stamps, done, drained, tasks_per_job),
    }
    if stamps:
        first = min(s["first"] for s in stamps)
        result["seconds"] = round(max(s["last"] for s in stamps) - first, 4)
        result["tasks_started"] = sum(int(s["count"]) for s in stamps)
    return result


def _rate(
    stamps: list[dict[str, float]], done: int, drained: bool, tasks_per_job: int
) -> float | None:
    """Jobs per second.

    A drained run: ``done`` jobs from the first task start to the last task start
    (a no-op task ends right after it starts). A run stopped at its time bound:
    the sum of each worker's steady task rate, (tasks - 1) / (last - first),
    divided by the tasks per job; this neither counts a whole job for the first
    task of a short window nor drops the chains that were half-way through.
    """
    if not stamps:
        return None
    if drained:
        span = max(s["last"] for s in stamps) - min(s["first"] for s in stamps)
        return round(done / span, 2) if span > 0 and done else None
    task_rate = sum(
        (s["count"] - 1) / (s["last"] - s["first"]) for s in stamps if s["last"] > s["first"]
    )
    return round(task_rate / tasks_per_job, 2) if task_rate else None


def throughput(
    system: System,
    scratch: Path,
    n: int,
    k: int,
    kind: str,
    max_seconds: float,
    window: float | None = None,
) -> dict[str, Any]:
    """N jobs of ``kind`` on K workers; ``window`` bounds a system that cannot drain."""
    system.reset()
    system.enqueue_bulk(n, kind)
    tasks_per_job = 3 if kind == "chain3" else 1
    return {
        "kind": kind,
        "enqueued": n,
        **_run_workers(system, k, scratch, max_seconds, window, tasks_per_job),
    }


def backlog(
    system: System,
    scratch: Path,
    n: int,
    k: int,
    finished: int,
    queued: int,
    window: float,
    max_seconds: float,
) -> dict[str, Any]:
    """Throughput on an empty table, then with ``finished`` + ``queued`` filler rows."""
    (scratch / "empty").mkdir()
    (scratch / "full").mkdir()
    peer_window = None if system.can_drain else window
    empty = throughput(system, scratch / "empty", n, k, "noop", max_seconds, peer_window)
    system.reset()
    filled_at = time.time()
    system.fill_backlog(finished, queued)
    fill_seconds = round(time.time() - filled_at, 2)
    full = _run_workers(system, k, scratch / "full", max_seconds, window)
    ratio = None
    if empty.get("jobs_per_s") and full.get("jobs_per_s"):
        ratio = round(full["jobs_per_s"] / empty["jobs_per_s"], 3)
    return {
        "empty": empty,
        "backlog": {**full, "finished_rows": finished, "queued_rows": queued},
        "fill_seconds": fill_seconds,
        "backlog_vs_empty": ratio,
    }


def _wait_lines(path: Path, count: int, deadline: float) -> float | None:
    """Wait until ``path`` has ``count`` lines; return the last line's timestamp."""
    while time.time() < deadline:
        try:
            lines = path.read_text().split()
        except FileNotFoundError:
            lines = []
        if len(lines) >= count:
            return float(lines[count - 1])
        time.sleep(0.0005)
    return None


def latency(
    system: System, scratch: Path, samples: int, timeout: float, seed: int = 1
) -> dict[str, Any]:
    """One idle worker; enqueue one job at a time; commit-to-task-start latency."""
    system.reset()
    pickups = scratch / "pickups.txt"
    workers = Workers(system.worker(drain=False), 1, scratch, {"BENCH_PICKUP_FILE": str(pickups)})
    rng = random.Random(seed)
    values: list[float] = []
    missed = 0
    try:
        system.enqueue_one("pickup")  # warm-up: waits for the worker to be up
        seen = 1 if _wait_lines(pickups, 1, time.time() + 60) is not None else 0
        if seen:
            for _ in range(samples):
                time.sleep(rng.uniform(0.0, system.poll_cycle))
                committed = system.enqueue_one("pickup")
                picked = _wait_lines(pickups, seen + 1, time.time() + timeout)
                if picked is None:
                    missed += 1
                    break  # the worker is stuck or slow; do not pile up jobs
                seen += 1
                values.append(picked - committed)
    finally:
        workers.stop()
    result: dict[str, Any] = {
        "samples": len(values),
        "missed": missed,
        "errors": workers.problems(),
    }
    if values:
        for q in (50, 95, 99):
            result[f"p{q}_ms"] = round(percentile(values, q) * 1000, 2)
        result["max_ms"] = round(max(values) * 1000, 2)
    return result


def enqueue(system: System, scratch: Path, n: int, mode: str) -> dict[str, Any]:
    system.reset()
    started = time.perf_counter()
    if mode == "single":
        for _ in range(n):
            system.enqueue_one("noop")
    else:
        system.enqueue_bulk(n, "noop")
    seconds = time.perf_counter() - started
    return {"mode": mode, "jobs": n, "seconds": round(seconds, 4), "jobs_per_s": round(n / seconds)}


def memory(system: System, scratch: Path, n: int, max_seconds: float) -> dict[str, Any]:
    """RSS of one draining worker after its first job and just before it exits."""
    system.reset()
    system.enqueue_bulk(n, "noop")
    stamps_dir = scratch / "stamps"
    stamps_dir.mkdir()
    started = time.time()
    workers = Workers(system.worker(drain=True), 1, scratch, {"BENCH_STAMP_DIR": str(stamps_dir)})
    pid = workers.procs[0].pid
    deadline = started + max_seconds
    start_kib = last_kib = peak_kib = None
    try:
        while workers.alive() and time.time() < deadline and not any(stamps_dir.glob("*.json")):
            time.sleep(0.01)
        start_kib = peak_kib = read_rss_kib(pid)
        while workers.alive() and time.time() < deadline:
            rss = read_rss_kib(pid)
            if rss is not None:
                last_kib = rss
                peak_kib = max(peak_kib or 0, rss)
            time.sleep(0.2)
        drained = not workers.alive()
    finally:
        workers.stop()
    return {
        "jobs": system.completed(),
        "drained": drained,
        "seconds": round(time.time() - started, 1),
        "rss_start_mib": round(start_kib / 1024, 1) if start_kib else None,
        "rss_end_mib": round(last_kib / 1024, 1) if last_kib else None,
        "rss_peak_mib": round(peak_kib / 1024, 1) if peak_kib else None,
        "errors": workers.problems(),
    }


SCENARIOS: dict[str, Callable[..., dict[str, Any]]] = {
    "throughput": throughput,
    "backlog": backlog,
    "latency": latency,
    "enqueue": enqueue,
    "memory": memory,
}


def main(make_system: Callable[[], System]) -> None:
    """Driver entry point: ``driver.py SCENARIO '{"param": value, ...}'``."""
    from benchkit import iowait  # it builds on this module, so it is imported late

    scenarios = {**SCENARIOS, "io": iowait.io}
    scenario, params = sys.argv[1], json.loads(sys.argv[2] if len(sys.argv) > 2 else "{}")
    system = make_system()
    scratch = Path(tempfile.mkdtemp(prefix=f"bench-{system.name}-{scenario}-"))
    try:
        result = scenarios[scenario](system, scratch, **params)
    finally:
        shutil.rmtree(scratch, ignore_errors=True)
    print(RESULT_PREFIX + json.dumps(result), flush=True)
