"""The checks and the summary of scripts/soak.py."""

from __future__ import annotations

import collections

from soak_parts import STEPS, Chaos, Producer, quietly_reconnect


def check(producer: Producer, chaos: Chaos, drained: bool) -> dict:
    """Compare what was enqueued with what ran; every failed check is a line in ``failures``."""
    from django_dbq.models import Job
    from tests.models import Execution

    quietly_reconnect()
    failures = [] if drained else ["the queue did not drain in time"]
    jobs = {row["id"]: row for row in Job.objects.values("id", "state", "errors")}
    lost = [pk for pk in producer.created if pk not in jobs]
    if lost:
        failures.append(f"{len(lost)} jobs lost, e.g. {lost[:3]}")
    unfinished = collections.Counter(
        row["state"] for row in jobs.values() if row["state"] != "COMPLETE"
    )
    if unfinished:
        failures.append(f"jobs not COMPLETE: {dict(unfinished)}")
    runs = collections.defaultdict(list)
    for job_id, step, pid in Execution.objects.order_by("id").values_list("job_id", "step", "pid"):
        runs[(job_id, step)].append(pid)
    missing = [(pk, s) for pk in jobs for s in STEPS if (str(pk), s) not in runs]
    if missing:
        failures.append(f"{len(missing)} steps never ran, e.g. {missing[:3]}")
    causes, unexplained = collections.Counter(), []
    for (job_id, step), pids in runs.items():
        extra = len(pids) - 1
        if not extra:
            continue
        found = ["kill" for p in pids if p in chaos.killed] + [
            "pause" for p in pids if p in chaos.paused
        ]
        if chaos.events["restarts"]:
            errors = next((r["errors"] for pk, r in jobs.items() if str(pk) == job_id), [])
            found += ["restart" for e in errors if e.get("step", "").endswith(step)]
        causes.update(found[:extra])
        if extra > len(found):
            unexplained.append((job_id, step, pids))
    if unexplained:
        failures.append(
            f"{len(unexplained)} extra step runs not caused by chaos, e.g. {unexplained[:3]}"
        )
    if chaos.bad_stops:
        failures.append(
            f"workers stopped by SIGTERM exited non-zero (pid, status): {chaos.bad_stops}"
        )
    if chaos.unexpected_exits:
        failures.append(f"workers exited by themselves: {chaos.unexpected_exits}")
    steps = sum(len(p) for p in runs.values())
    return {
        "failures": failures, "jobs": len(jobs), "complete": len(jobs) - sum(unfinished.values()),
        "steps": steps, "extra": steps - sum(1 for _ in runs), "causes": causes,
        "uncertain": len(producer.uncertain),
    }  # fmt: skip


def summary(results: dict, chaos: Chaos, elapsed: float) -> str:
    causes = results["causes"]
    rows = [
        ("jobs (complete / enqueued)", f"{results['complete']} / {results['jobs']}"),
        ("step runs", results["steps"]),
        ("kills / stops / pauses / restarts",
         " / ".join(str(chaos.events[k]) for k in ("kills", "stops", "pauses", "restarts"))),
        ("extra step runs", results["extra"]),
        ("  caused by kill / pause / restart",
         " / ".join(str(causes[k]) for k in ("kill", "pause", "restart"))),
        ("max time to rescue (s)", f"{max(chaos.rescue_times, default=0):.1f}"),
        ("throughput (jobs/s, incl. drain)", f"{results['complete'] / elapsed:.1f}"),
        ("inserts with unknown outcome", results["uncertain"]),
        ("elapsed (s)", f"{elapsed:.0f}"),
    ]  # fmt: skip
    width = max(len(name) for name, _ in rows)
    return "\n".join(f"{name:<{width}}  {value}" for name, value in rows)
