"""Medians of repeated runs, and the Markdown tables printed at the end of a run."""

from __future__ import annotations

import statistics
from typing import Any

METRICS: dict[str, tuple[str, ...]] = {
    "ceiling": ("jobs_per_s",),
    "enqueue": ("jobs_per_s",),
    "throughput": ("jobs_per_s", "jobs"),
    "latency": ("p50_ms", "p95_ms", "p99_ms", "max_ms", "samples"),
    "backlog": ("empty_jobs_per_s", "backlog_jobs_per_s", "backlog_vs_empty", "fill_seconds"),
    "memory": ("rss_start_mib", "rss_end_mib", "rss_peak_mib", "jobs", "seconds"),
    "io": ("jobs_per_s", "rss_mib", "pss_mib", "processes", "connections", "jobs"),
}


def flatten(scenario: str, run: dict[str, Any]) -> dict[str, Any]:
    """The numbers of one run that get a median."""
    if scenario == "backlog":
        return {
            "empty_jobs_per_s": run.get("empty", {}).get("jobs_per_s"),
            "backlog_jobs_per_s": run.get("backlog", {}).get("jobs_per_s"),
            "backlog_vs_empty": run.get("backlog_vs_empty"),
            "fill_seconds": run.get("fill_seconds"),
        }
    return {name: run.get(name) for name in METRICS[scenario]}


def median_of(scenario: str, runs: list[dict[str, Any]]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    flat = [flatten(scenario, run) for run in runs if "error" not in run]
    for name in METRICS[scenario]:
        values = [f[name] for f in flat if isinstance(f.get(name), int | float)]
        out[name] = round(statistics.median(values), 3) if values else None
    busy = [run["cpu_busy_before"] for run in runs if "cpu_busy_before" in run]
    out["cpu_busy_before"] = round(statistics.median(busy), 3) if busy else None
    out["ok_runs"] = len(flat)
    out["bounded_runs"] = sum(1 for run in runs if run.get("drained") is False)
    errors = [run["error"] for run in runs if "error" in run]
    errors += [e for run in runs for e in run.get("errors", [])]
    if errors:
        out["errors"] = errors[:3]
    return out


class Results:
    """Aggregated results, looked up by scenario, system, database and parameters."""

    def __init__(self, entries: list[dict[str, Any]]):
        self.entries = entries

    def get(self, scenario: str, system: str, db: str = "postgresql", **params: Any) -> dict:
        for entry in self.entries:
            if (entry["scenario"], entry["system"], entry["db"]) != (scenario, system, db):
                continue
            if all(entry["params"].get(key) == value for key, value in params.items()):
                return entry["median"]
        return {}

    def pairs(self, scenario: str) -> list[tuple[str, str]]:
        seen: list[tuple[str, str]] = []
        for entry in self.entries:
            pair = (entry["system"], entry["db"])
            if entry["scenario"] == scenario and pair not in seen:
                seen.append(pair)
        return seen


def fmt(value: Any, digits: int = 0, mark: bool = False) -> str:
    if value is None:
        return "n/a"
    text = f"{value:,.{digits}f}" if isinstance(value, int | float) else str(value)
    return text + ("*" if mark else "")


def ratio(a: Any, b: Any) -> str:
    if not isinstance(a, int | float) or not isinstance(b, int | float) or not b:
        return "n/a"
    return f"{a / b:.2f}x"


def table(header: list[str], rows: list[list[str]]) -> str:
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    lines += ["| " + " | ".join(row) + " |" for row in rows]
    return "\n".join(lines)


def render(res: Results, ks: list[int], kinds: list[str], extra: str = "") -> str:
    """Every scenario's tables; ``extra`` (other tables) goes before the load summary."""
    parts: list[str] = []
    k_cols = [f"K={k}" for k in ks]
    rows = []
    for system, db in res.pairs("throughput"):
        for kind in kinds:
            cells = []
            for k in ks:
                m = res.get("throughput", system, db, kind=kind, k=k)
                cells.append(fmt(m.get("jobs_per_s"), 0, bool(m.get("bounded_runs"))))
            rows.append([system, db, kind, *cells])
    ceiling = [res.get("ceiling", "pgbench", k=k).get("jobs_per_s") for k in ks]
    if any(ceiling):
        rows.append(["pgbench claim cycle", "postgresql", "noop", *[fmt(c) for c in ceiling]])
    if rows:
        parts.append("### Throughput (jobs/s; * = run cut off at its time bound)\n")
        parts.append(table(["system", "database", "job", *k_cols], rows))

    rows = []
    for kind in kinds:
        for k in ks:
            ours = res.get("throughput", "ours", kind=kind, k=k).get("jobs_per_s")
            row = [kind, str(k)]
            for peer in ("procrastinate", "dbq3"):
                row.append(
                    ratio(ours, res.get("throughput", peer, kind=kind, k=k).get("jobs_per_s"))
                )
            row.append(ratio(ours, res.get("ceiling", "pgbench", k=k).get("jobs_per_s")))
            rows.append(row)
    if rows and res.pairs("throughput"):
        parts.append("\n### Throughput ratios on PostgreSQL (ours / other; >1 = ours faster)\n")
        parts.append(
            table(["job", "K", "vs Procrastinate", "vs django-db-queue 3.3", "vs pgbench"], rows)
        )

    rows = []
    for system, db in res.pairs("latency"):
        m = res.get("latency", system, db)
        rows.append([system, db, *[fmt(m.get(f"{p}_ms"), 1) for p in ("p50", "p95", "p99", "max")]])
    if rows:
        parts.append("\n### Pickup latency, commit to task start (ms, one idle worker)\n")
        parts.append(table(["system", "database", "p50", "p95", "p99", "max"], rows))

    rows = []
    for system, db in res.pairs("enqueue"):
        single = res.get("enqueue", system, db, mode="single").get("jobs_per_s")
        bulk = res.get("enqueue", system, db, mode="bulk").get("jobs_per_s")
        rows.append([system, db, fmt(single), fmt(bulk)])
    if rows:
        parts.append("\n### Enqueue (jobs/s)\n")
        parts.append(table(["system", "database", "one by one", "bulk"], rows))

    rows = []
    for system, db in res.pairs("backlog"):
        m = res.get("backlog", system, db)
        rows.append(
            [
                system,
                db,
                fmt(m.get("empty_jobs_per_s")),
                fmt(m.get("backlog_jobs_per_s")),
                fmt(m.get("backlog_vs_empty"), 2),
                fmt(m.get("fill_seconds"), 1),
            ]
        )
    if rows:
        parts.append(
            "\n### Backlog scaling (jobs/s, empty table vs finished + queued filler rows)\n"
        )
        parts.append(
            table(["system", "database", "empty", "with backlog", "ratio", "fill s"], rows)
        )

    rows = []
    for system, db in res.pairs("memory"):
        m = res.get("memory", system, db)
        rows.append(
            [
                system,
                db,
                fmt(m.get("jobs")),
                fmt(m.get("seconds"), 0),
                *[fmt(m.get(f"rss_{w}_mib"), 1) for w in ("start", "end", "peak")],
            ]
        )
    if rows:
        parts.append("\n### Worker memory (VmRSS MiB of one worker)\n")
        parts.append(table(["system", "database", "jobs", "s", "start", "end", "peak"], rows))

    if extra:
        parts.append(extra)

    busy = [run.get("cpu_busy_before", 0) for entry in res.entries for run in entry.get("runs", [])]
    noisy = sum(1 for b in busy if b >= 0.25)
    if busy:
        parts.append(
            f"\nOther load: {noisy} of {len(busy)} runs started with the CPUs at least 25% busy "
            f"after the bounded wait for quiet (worst {max(busy):.0%}).\n"
        )

    problems = [
        f"- {e['scenario']} {e['system']}/{e['db']} {e['params']}: {err[:300]!r}"
        for e in res.entries
        for err in e["median"].get("errors", [])
    ]
    if problems:
        parts.append("\n### Problems\n")
        parts.append("\n".join(problems))
    return "\n".join(parts) + "\n"
