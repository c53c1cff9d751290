"""The ``io`` scenario's runs and tables (the scenario itself: ``bench/benchkit/iowait.py``).

Ours runs on PostgreSQL as the single worker (concurrency 1, no ``--mode``), then
in each mode at each concurrency (the async mode with an ``async def`` task);
Procrastinate at each concurrency, one asyncio process with async tasks. The
processes mode is planned only up to ``io_process_max`` children (see
:data:`PROCESS_MAX_WHY`).
"""

from __future__ import annotations

import statistics
from typing import Any

from bench.report import Results, fmt, ratio, table

MODES = ("threads", "async", "processes")
PROCESS_MAX_WHY = (
    "each child of the processes mode holds its own database connections (about 3), "
    "so 50 children would need more than PostgreSQL's default max_connections (100)"
)
LABELS = {None: "single", "threads": "threads", "async": "async", "processes": "processes"}


def plan(system: str, db: str, cfg: Any) -> list[tuple[dict[str, Any], float]]:
    """(params, subprocess timeout) of every io run of ``system`` on ``db``."""
    if db != "postgresql" or system not in ("ours", "procrastinate"):
        return []
    runs: list[tuple[int, str | None]] = []
    if system == "ours":
        runs.append((1, None))
        runs += [(c, "threads") for c in cfg.io_concurrency]
        runs += [(c, "async") for c in cfg.io_concurrency]
        runs += [(c, "processes") for c in cfg.io_concurrency if c <= cfg.io_process_max]
    else:
        runs += [(c, None) for c in cfg.io_concurrency]
    timeout = cfg.io_max_seconds + 180
    base = {"n": cfg.io_n, "max_seconds": cfg.io_max_seconds}
    return [({**base, "concurrency": c, "mode": mode}, timeout) for c, mode in runs]


def _row(system: str, mode: str | None, c: int, m: dict[str, Any]) -> list[str]:
    name = "procrastinate (async)" if system == "procrastinate" else f"ours {LABELS[mode]}"
    return [
        name,
        str(c),
        fmt(m.get("jobs_per_s"), 0, bool(m.get("bounded_runs"))),
        fmt(m.get("rss_mib"), 1),
        fmt(m.get("pss_mib"), 1),
        fmt(m.get("processes")),
        fmt(m.get("connections")),
    ]


def paired(ours: list[dict[str, Any]], peer: list[dict[str, Any]]) -> str:
    """The median of the jobs/s ratios of the runs made in the same round.

    The repeats interleave the systems, so the n-th runs of both saw about the same
    load; on a shared machine this moves less than the ratio of the two medians.
    """
    ratios = [
        o["jobs_per_s"] / p["jobs_per_s"]
        for o, p in zip(ours, peer, strict=False)
        if o.get("jobs_per_s") and p.get("jobs_per_s")
    ]
    return f"{statistics.median(ratios):.2f}x" if ratios else "n/a"


def render(res: Results) -> str:
    """The io tables: every run's medians, then ours / Procrastinate at equal concurrency."""
    entries = [e for e in res.entries if e["scenario"] == "io"]
    if not entries:
        return ""
    rows = [
        _row(e["system"], e["params"].get("mode"), e["params"]["concurrency"], e["median"])
        for e in entries
    ]
    header = ["system", "C", "jobs/s", "RSS MiB", "PSS MiB", "processes", "connections"]
    parts = [
        "\n### io: jobs that wait 20 ms (PostgreSQL; peak total RSS/PSS of the worker "
        "command's processes, peak database connections; * = cut off at its time bound)\n",
        table(header, rows),
    ]
    rows = []
    for e in entries:
        if e["system"] != "ours":
            continue
        c = e["params"]["concurrency"]
        peer_entry = next(
            (
                p
                for p in entries
                if p["system"] == "procrastinate" and p["params"]["concurrency"] == c
            ),
            None,
        )
        if peer_entry is None:
            continue
        ours, peer = e["median"], peer_entry["median"]
        rows.append(
            [
                LABELS[e["params"]["mode"]],
                str(c),
                ratio(ours.get("jobs_per_s"), peer.get("jobs_per_s")),
                paired(e["runs"], peer_entry["runs"]),
                ratio(ours.get("rss_mib"), peer.get("rss_mib")),
                ratio(ours.get("pss_mib"), peer.get("pss_mib")),
                f"{fmt(ours.get('connections'))} vs {fmt(peer.get('connections'))}",
            ]
        )
    if rows:
        parts.append("\n### io ratios, ours / Procrastinate at the same concurrency\n")
        header = ["ours", "C", "jobs/s", "jobs/s paired", "RSS", "PSS", "connections"]
        parts.append(table(header, rows))
    return "\n".join(parts) + "\n"
