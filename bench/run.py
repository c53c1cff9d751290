"""Benchmark django_dbq against django-db-queue 3.3.0, Procrastinate and pgbench.

    .venv/bin/python bench/run.py            # full run (tens of minutes)
    .venv/bin/python bench/run.py --quick    # smoke run with small N (a few minutes)
    .venv/bin/python bench/run.py --only throughput,latency --systems ours --dbs postgresql

Prints Markdown tables and writes every run's raw numbers plus the medians to
``var/bench/results.json`` (or ``--json PATH``) and the tables to
``var/bench/results.md``. See docs/benchmarks.md.
"""

from __future__ import annotations

import argparse
import datetime
import json
import os
import shlex
import sys
import time
from dataclasses import asdict, dataclass, replace
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench import ceiling, ioplan, machine, quiet, report
from bench.targets import VAR, Target, our_target, peer_target, prepare

SCENARIOS = ["ceiling", "enqueue", "throughput", "latency", "backlog", "memory", "io"]
SYSTEMS = ["ours", "procrastinate", "dbq3"]
DBS = ["postgresql", "mariadb", "sqlite"]


@dataclass(frozen=True)
class Config:
    n: int = 3000  # jobs per throughput run
    ks: tuple[int, ...] = (1, 2, 4)
    kinds: tuple[str, ...] = ("noop", "chain3")
    max_seconds: float = 40.0  # time bound of one throughput run
    peer_window: float = 10.0  # django-db-queue 3.x runs this long (1 job/s/worker)
    repeat: int = 3
    latency_samples: int = 40
    latency_timeout: float = 10.0
    enqueue_single: int = 1000
    enqueue_bulk: int = 20000
    backlog_finished: int = 1_000_000
    backlog_queued: int = 100_000
    backlog_window: float = 8.0
    backlog_k: int = 2
    memory_n: int = 100_000
    memory_dbs: tuple[str, ...] = ("postgresql",)  # RSS growth is Python-side; PG is enough
    memory_max_seconds: float = 240.0
    ceiling_seconds: float = 10.0
    io_n: int = 600  # jobs of 20 ms each per io run
    io_concurrency: tuple[int, ...] = (1, 10, 50)
    io_process_max: int = 10  # see ioplan.PROCESS_MAX_WHY
    io_max_seconds: float = 60.0
    quiet_threshold: float = 0.25  # wait before each run until the CPUs are this idle ...
    quiet_max_wait: float = 5.0  # ... for at most this long


QUICK = Config(
    n=300,
    max_seconds=20,
    peer_window=8,
    repeat=1,
    latency_samples=10,
    enqueue_single=200,
    enqueue_bulk=2000,
    backlog_finished=10_000,
    backlog_queued=1000,
    backlog_window=3,
    memory_n=2000,
    memory_max_seconds=60,
    memory_dbs=("postgresql", "mariadb", "sqlite"),
    ceiling_seconds=3,
    io_n=100,
    io_concurrency=(1, 10),
    io_max_seconds=20,
    quiet_max_wait=3,
)


def plan(scenario: str, target: Target, cfg: Config) -> list[tuple[dict[str, Any], float]]:
    """(params, subprocess timeout) for each run of ``scenario`` on ``target``."""
    peer3 = target.system == "dbq3"
    if scenario == "io":
        return ioplan.plan(target.system, target.db, cfg)
    if scenario == "enqueue":
        return [
            ({"n": cfg.enqueue_single, "mode": "single"}, 900),
            ({"n": cfg.enqueue_bulk, "mode": "bulk"}, 900),
        ]
    if scenario == "throughput":
        runs = []
        for kind in cfg.kinds:
            for k in cfg.ks:
                params: dict[str, Any] = {"n": cfg.n, "k": k, "kind": kind}
                if peer3:  # cannot drain: run for a window after the first task
                    params.update(n=200, window=cfg.peer_window, max_seconds=cfg.peer_window + 90)
                else:
                    params["max_seconds"] = cfg.max_seconds
                runs.append((params, params["max_seconds"] + 180))
        return runs
    if scenario == "latency":
        timeout = cfg.latency_samples * (cfg.latency_timeout + 1.5) + 120
        return [({"samples": cfg.latency_samples, "timeout": cfg.latency_timeout}, timeout)]
    if scenario == "backlog":
        window = cfg.peer_window if peer3 else cfg.backlog_window
        params = {
            "n": min(cfg.n, 200) if peer3 else cfg.n,
            "k": cfg.backlog_k,
            "finished": cfg.backlog_finished,
            "queued": cfg.backlog_queued,
            "window": window,
            "max_seconds": window + 90 if peer3 else cfg.max_seconds,
        }
        return [(params, window + cfg.max_seconds + 900)]
    if (
        scenario == "memory" and not peer3 and target.db in cfg.memory_dbs
    ):  # 3.x runs 1 job/s: 100,000 jobs is out of reach
        return [
            (
                {"n": cfg.memory_n, "max_seconds": cfg.memory_max_seconds},
                cfg.memory_max_seconds + 180,
            )
        ]
    return []


def short(result: dict[str, Any]) -> str:
    if "error" in result:
        return "ERROR " + result["error"].strip().splitlines()[-1][:200]
    keys = (
        "cpu_busy_before",
        "jobs_per_s",
        "p50_ms",
        "p99_ms",
        "backlog_vs_empty",
        "rss_end_mib",
        "rss_mib",
        "connections",
        "jobs",
    )
    shown = {k: result[k] for k in keys if k in result}
    if result.get("errors"):
        shown["worker_errors"] = len(result["errors"])
    return json.dumps(shown)


def run_ceiling(cfg: Config, entries: list[dict[str, Any]]) -> None:
    try:
        ceiling.setup()
    except Exception as error:  # reported, the rest of the run goes on
        entries.append(
            {
                "scenario": "ceiling",
                "system": "pgbench",
                "db": "postgresql",
                "params": {},
                "runs": [{"error": str(error)}],
            }
        )
        return
    for k in cfg.ks:
        runs = []
        for r in range(cfg.repeat):
            busy = quiet.wait_quiet(cfg.quiet_threshold, cfg.quiet_max_wait)
            try:
                result = ceiling.run(cfg.ceiling_seconds, k)
            except Exception as error:
                result = {"error": str(error)}
            result["cpu_busy_before"] = busy
            print(f"[ceiling] pgbench K={k} run {r + 1}/{cfg.repeat}: {short(result)}", flush=True)
            runs.append(result)
        entries.append(
            {
                "scenario": "ceiling",
                "system": "pgbench",
                "db": "postgresql",
                "params": {"k": k, "seconds": cfg.ceiling_seconds},
                "runs": runs,
            }
        )


def run_scenario(scenario: str, targets: list[Target], cfg: Config, entries: list) -> None:
    by_key: dict[tuple[str, str], dict[str, Any]] = {}
    for r in range(cfg.repeat if scenario != "memory" else 1):
        for target in targets:  # repeats interleave the systems, so drift hits all alike
            for params, timeout in plan(scenario, target, cfg):
                busy = quiet.wait_quiet(cfg.quiet_threshold, cfg.quiet_max_wait)
                started = time.time()
                result = target.run(scenario, params, timeout)
                if "error" in result and "connect" in result["error"]:
                    # The server restarted under us (another program's outage test, say):
                    # one more try after a pause, with the first error kept.
                    time.sleep(10)
                    result = {**target.run(scenario, params, timeout), "retried": result["error"]}
                result["cpu_busy_before"] = busy
                took = time.time() - started
                print(
                    f"[{scenario}] {target.label} {json.dumps(params)} run {r + 1}: "
                    f"{short(result)} ({took:.0f} s)",
                    flush=True,
                )
                key = (target.label, json.dumps(params, sort_keys=True))
                entry = by_key.setdefault(
                    key,
                    {
                        "scenario": scenario,
                        "system": target.system,
                        "db": target.db,
                        "params": params,
                        "runs": [],
                    },
                )
                entry["runs"].append(result)
    entries.extend(by_key.values())


def write_outputs(
    path: Path, context: dict[str, Any], info: dict[str, Any], entries: list[dict[str, Any]]
) -> str:
    """Write the JSON and the Markdown tables of everything measured so far."""
    cfg = context["config"]
    for entry in entries:
        entry["median"] = report.median_of(entry["scenario"], entry["runs"])
    results = report.Results(entries)
    tables = report.render(results, list(cfg["ks"]), list(cfg["kinds"]), ioplan.render(results))
    header = (
        f"Command: `{context['command']}` ({context['mode']}; medians of {cfg['repeat']} runs; "
        f"started {context['started']})"
    )
    out = {
        **context,
        "finished": datetime.datetime.now(datetime.UTC).isoformat(timespec="seconds"),
        "machine": {**info, "loadavg_at_end": os.getloadavg()},
        "results": entries,
    }
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(out, indent=1))
    path.with_suffix(".md").write_text(header + "\n\n" + tables)
    return header + "\n\n" + tables


def parse_args(argv: list[str]) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="small N, one repeat: a smoke run")
    parser.add_argument("--only", default=",".join(SCENARIOS), help="comma-separated scenarios")
    parser.add_argument("--systems", default=",".join(SYSTEMS), help="comma-separated systems")
    parser.add_argument("--dbs", default=",".join(DBS), help="databases for our library")
    parser.add_argument("--repeat", type=int, help="runs per measurement (median reported)")
    parser.add_argument("-n", type=int, help="jobs per throughput run")
    parser.add_argument("--memory-n", type=int, help="jobs for the memory scenario")
    parser.add_argument("--quiet-max-wait", type=float, help="seconds to wait for idle CPUs")
    parser.add_argument("--json", type=Path, default=VAR / "results.json", help="output file")
    args = parser.parse_args(argv)
    for name, allowed in (("only", SCENARIOS), ("systems", SYSTEMS), ("dbs", DBS)):
        values = [v for v in getattr(args, name).split(",") if v]
        if unknown := set(values) - set(allowed):
            parser.error(f"--{name}: unknown {sorted(unknown)}; choose from {allowed}")
        setattr(args, name, values)
    return args


def main(argv: list[str]) -> int:
    args = parse_args(argv)
    cfg = QUICK if args.quick else Config()
    overrides = {"repeat": args.repeat, "n": args.n, "memory_n": args.memory_n}
    overrides["quiet_max_wait"] = args.quiet_max_wait
    cfg = replace(cfg, **{k: v for k, v in overrides.items() if v is not None})
    started = datetime.datetime.now(datetime.UTC)
    targets: list[Target] = []
    setup_errors: list[str] = []
    candidates = [("ours", db) for db in args.dbs if "ours" in args.systems]
    candidates += [(s, "postgresql") for s in args.systems if s != "ours"]
    for system, db in candidates:
        try:
            target = our_target(db) if system == "ours" else peer_target(system)
            prepare(target)
            targets.append(target)
        except Exception as error:
            setup_errors.append(f"{system}/{db}: {error}")
            print(f"[setup] {system}/{db} skipped: {error}", flush=True)
    peers = {t.system: t.python for t in targets if t.system != "ours"}
    info = machine.describe(peers)
    print(f"[machine] {json.dumps(info)}", flush=True)
    entries: list[dict[str, Any]] = []
    context = {
        "command": shlex.join([".venv/bin/python", "bench/run.py", *argv]),
        "mode": "quick" if args.quick else "full",
        "started": started.isoformat(timespec="seconds"),
        "config": asdict(cfg),
        "setup_errors": setup_errors,
    }
    for scenario in args.only:
        if scenario == "ceiling":
            run_ceiling(cfg, entries)
        else:
            run_scenario(scenario, targets, cfg, entries)
        tables = write_outputs(args.json, context, info, entries)  # after each, in case of a stop
    print("\n" + tables)
    print(f"Wrote {args.json} and {args.json.with_suffix('.md')}")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
