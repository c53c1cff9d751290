"""Our throughput as a share of the pgbench claim-cycle ceiling, paired round by round.

    .venv/bin/python bench/ratio.py --rounds 7 --k 2

On a shared machine the absolute rates swing with the other load, but a
ceiling run and one of ours made in the same minute see about the same load.
So each round runs the pgbench ceiling and our throughput back to back (the
order alternates between rounds, so a drift does not always favour one side),
takes ours / ceiling for that round, and the summary is the median of those
per-round ratios. Comparing that median before and after a change is the check
that the change did not slow the worker down. With ``--other TREE`` the worker
of another checkout (say, the code before a change) runs in the same rounds
too, and ``ours_vs_other`` is the direct A/B of the two rates per round.

Uses its own databases (``dbq_bench<suffix>``, ``ceiling_bench<suffix>``), so
it can run next to ``bench/run.py`` and never touches the test databases.
"""

from __future__ import annotations

import argparse
import datetime
import itertools
import json
import os
import resource
import shlex
import statistics
import sys
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench import ceiling, quiet
from bench.targets import (
    PG_HOST,
    PG_PORT,
    PG_USER,
    ROOT,
    VAR,
    Target,
    our_target,
    pg_url,
    recreate_pg,
    sh,
)


def prepare_ours(db: str, tree: Path = ROOT) -> Target:
    """Our library from checkout ``tree`` on a PostgreSQL database of its own, migrated."""
    target = our_target("postgresql")
    if tree != ROOT:  # another checkout: its own virtualenv, driver and code
        target.python = tree / ".venv" / "bin" / "python"
        target.driver = tree / "bench" / "ours.py"
        target.env["PYTHONPATH"] = f"{tree}:{tree / 'bench'}"
        target.cwd = tree
    target.env["DATABASE_URL"] = pg_url(db)
    recreate_pg(db)
    migrate = [str(target.python), str(tree / "manage.py"), "migrate", "-v0"]
    sh(migrate, env={**os.environ, **target.env}, cwd=tree)
    return target


def _pg_commits(db: str) -> int:
    sql = f"SELECT xact_commit FROM pg_stat_database WHERE datname = '{db}'"
    return int(sh(["psql", "-h", PG_HOST, "-p", PG_PORT, "-U", PG_USER, "-d", db, "-qAtc", sql]))


def _child_cpu() -> float:
    used = resource.getrusage(resource.RUSAGE_CHILDREN)
    return used.ru_utime + used.ru_stime


def measure_ceiling(args: argparse.Namespace, k: int) -> dict[str, Any]:
    busy = quiet.wait_quiet(args.quiet_threshold, args.quiet_max_wait)
    try:
        result = ceiling.run(args.ceiling_seconds, k)
    except Exception as error:  # one failed run is reported, the other rounds still count
        result = {"error": str(error)}
    return {**result, "cpu_busy_before": busy, "cpu_busy_after": quiet.busy_share()}


def measure_ours(args: argparse.Namespace, target: Target, k: int) -> dict[str, Any]:
    """Our drained throughput, plus two numbers other load hardly moves.

    The wall-clock rate follows whatever else the machine runs; the client CPU
    per job (driver and workers, enqueue included) and the commits per job on
    our database do not, so they show a slowdown even when the ratio is noisy.
    """
    busy = quiet.wait_quiet(args.quiet_threshold, args.quiet_max_wait)
    params = {"n": args.n, "k": k, "kind": "noop", "max_seconds": args.max_seconds}
    db = target.env["DATABASE_URL"].rsplit("/", 1)[1]
    commits, cpu = _pg_commits(db), _child_cpu()
    result = target.run("throughput", params, args.max_seconds + 180)
    cpu, commits = _child_cpu() - cpu, _pg_commits(db) - commits
    if result.get("jobs"):
        result["client_cpu_ms_per_job"] = round(1000 * cpu / result["jobs"], 4)
        result["commits_per_job"] = round(commits / result["jobs"], 3)
    return {**result, "cpu_busy_before": busy, "cpu_busy_after": quiet.busy_share()}


def one_round(
    args: argparse.Namespace, targets: dict[str, Target], k: int, index: int
) -> dict[str, Any]:
    """The ceiling and each target once, in an order that cycles through every
    permutation, so no run always comes first, last or next to the ceiling."""
    orders = list(itertools.permutations(["ceiling", *targets]))
    order = list(orders[index % len(orders)])
    runs = {
        name: measure_ceiling(args, k)
        if name == "ceiling"
        else measure_ours(args, targets[name], k)
        for name in order
    }
    pg_rate = runs["ceiling"].get("jobs_per_s")
    ratios = {
        name: round(runs[name]["jobs_per_s"] / pg_rate, 4)
        if pg_rate and runs[name].get("jobs_per_s")
        else None
        for name in targets
    }
    busy = [run[key] for run in runs.values() for key in ("cpu_busy_before", "cpu_busy_after")]
    row: dict[str, Any] = {"round": index + 1, "k": k, "order": ",".join(order), **runs}
    row["ratio"] = ratios["ours"]
    if "other" in targets:
        row["other_ratio"] = ratios["other"]
        other_rate = runs["other"].get("jobs_per_s")
        ours_rate = runs["ours"].get("jobs_per_s")
        row["ours_vs_other"] = (
            round(ours_rate / other_rate, 4) if other_rate and ours_rate else None
        )
    # Busy is sampled just before and just after each run: a round with other
    # load at either edge is kept in the JSON but left out of the quiet median.
    row["busy"] = busy
    row["quiet"] = max(busy) < args.quiet_threshold
    return row


def _spread(rounds: list[dict[str, Any]]) -> dict[str, Any]:
    ratios = [r["ratio"] for r in rounds]
    if not ratios:
        return {"rounds": 0}
    mid = statistics.median(ratios)
    return {
        "rounds": len(ratios),
        "median_ratio": round(mid, 4),
        "min_ratio": min(ratios),
        "max_ratio": max(ratios),
        "spread_pct": round(100 * (max(ratios) - min(ratios)) / mid, 1),
        "median_ceiling": round(statistics.median(r["ceiling"]["jobs_per_s"] for r in rounds), 1),
        "median_ours": round(statistics.median(r["ours"]["jobs_per_s"] for r in rounds), 1),
    }


def summarise(rounds: list[dict[str, Any]], k: int) -> dict[str, Any]:
    ok = [r for r in rounds if r["k"] == k and r["ratio"] is not None]
    out: dict[str, Any] = {"k": k, "quiet": _spread([r for r in ok if r["quiet"]])}
    out["all"] = _spread(ok)
    for name in ("client_cpu_ms_per_job", "commits_per_job"):
        values = [r["ours"][name] for r in ok if name in r["ours"]]
        out[f"median_{name}"] = round(statistics.median(values), 4) if values else None
    for name in ("other_ratio", "ours_vs_other"):  # with --other: the same rounds, A/B
        for part in ("quiet", "all"):
            values = [r[name] for r in ok if r.get(name) and (part == "all" or r["quiet"])]
            if values:
                out[f"{part}_median_{name}"] = round(statistics.median(values), 4)
    return out


def collect(args: argparse.Namespace, targets: dict[str, Target]) -> list[dict[str, Any]]:
    """Rounds until each K has ``rounds`` quiet ones, or ``max_rounds`` were tried."""
    rounds: list[dict[str, Any]] = []
    for index in range(args.max_rounds):
        for k in args.ks:  # K values interleave, like the rounds
            if sum(1 for r in rounds if r["k"] == k and r["quiet"]) >= args.rounds:
                continue
            row = one_round(args, targets, k, index)
            rounds.append(row)
            pg, ours = row["ceiling"], row["ours"]
            print(
                f"[ratio] round {row['round']} K={k} ({row['order']}): "
                f"ceiling {pg.get('jobs_per_s', pg.get('error'))} "
                f"ours {ours.get('jobs_per_s', ours.get('error'))} ratio {row['ratio']} "
                f"cpu/job {ours.get('client_cpu_ms_per_job')} ms "
                f"commits/job {ours.get('commits_per_job')} "
                f"other {row.get('other_ratio')} ours/other {row.get('ours_vs_other')} "
                f"busy {row['busy']} {'quiet' if row['quiet'] else 'LOADED'}",
                flush=True,
            )
        if all(
            sum(1 for r in rounds if r["k"] == k and r["quiet"]) >= args.rounds for k in args.ks
        ):
            break
    return rounds


def parse_args(argv: list[str]) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rounds", type=int, default=7, help="quiet paired rounds per K")
    parser.add_argument("--max-rounds", type=int, default=21, help="rounds tried at most")
    parser.add_argument("--k", default="2", help="comma-separated worker/client counts")
    parser.add_argument("-n", type=int, default=20000, help="jobs per throughput run of ours")
    parser.add_argument("--ceiling-seconds", type=float, default=5.0, help="pgbench run length")
    parser.add_argument("--max-seconds", type=float, default=40.0, help="bound of our run")
    parser.add_argument("--quiet-threshold", type=float, default=0.25)
    parser.add_argument("--quiet-max-wait", type=float, default=60.0)
    parser.add_argument("--db-suffix", default="_ratio", help="suffix of the database names")
    parser.add_argument(
        "--other", type=Path, help="another checkout whose worker runs in the same rounds (A/B)"
    )
    parser.add_argument("--json", type=Path, default=VAR / "ratio.json", help="output file")
    args = parser.parse_args(argv)
    args.ks = [int(k) for k in args.k.split(",") if k]
    return args


def main(argv: list[str]) -> int:
    args = parse_args(argv)
    commit = sh(["git", "-C", str(ROOT), "rev-parse", "--short", "HEAD"]).strip()
    if args.other:
        other = sh(["git", "-C", str(args.other), "rev-parse", "--short", "HEAD"]).strip()
        commit += f" (other: {args.other} at {other})"
    ceiling.DB = f"{ceiling.DB}{args.db_suffix}"  # the module reads it at each call
    ceiling.setup()
    targets = {"ours": prepare_ours(f"dbq_bench{args.db_suffix}")}
    if args.other:
        targets["other"] = prepare_ours(f"dbq_bench{args.db_suffix}_other", args.other.resolve())
    started = datetime.datetime.now(datetime.UTC).isoformat(timespec="seconds")
    print(f"[ratio] commit {commit}, started {started}, load {os.getloadavg()}", flush=True)
    rounds = collect(args, targets)
    summary = [summarise(rounds, k) for k in args.ks]
    out = {
        "command": shlex.join([".venv/bin/python", "bench/ratio.py", *argv]),
        "commit": commit,
        "started": started,
        "finished": datetime.datetime.now(datetime.UTC).isoformat(timespec="seconds"),
        "loadavg_at_end": os.getloadavg(),
        "summary": summary,
        "rounds": rounds,
    }
    args.json.parent.mkdir(parents=True, exist_ok=True)
    args.json.write_text(json.dumps(out, indent=1))
    for line in summary:
        print(f"[ratio] summary {json.dumps(line)}", flush=True)
    print(f"Wrote {args.json}")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
