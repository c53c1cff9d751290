"""Tasks and hooks that write down what they saw, one JSON line each, to ``$DBQ_HOOK_LOG``.

The module imports nothing from django_dbq, so the same hooks run under
django-db-queue 3.3.0 and under this library (tests/processes/test_drop_in.py compares them).
"""

import json
import os


def _seen(what: str, job, **extra) -> None:
    line = {
        "what": what,
        "state": str(job.state),
        "next_task": job.next_task,
        "workspace": dict(job.workspace or {}),
        **extra,
    }
    with open(os.environ["DBQ_HOOK_LOG"], "a") as log:
        log.write(json.dumps(line, sort_keys=True) + "\n")


def first(job):
    job.workspace["first"] = True
    _seen("task", job)


def second(job):
    job.workspace["second"] = True
    _seen("task", job)
    if job.workspace.get("fail"):
        raise ValueError("second step failed")


def pre_task(job):
    _seen("pre_task_hook", job)


def post_task(job):
    _seen("post_task_hook", job)
    job.workspace.setdefault("post", []).append(job.next_task)
    if job.workspace.get("post_hook_raises"):
        raise RuntimeError("post hook broke")


def failure(job, exception):
    _seen("failure_hook", job, exception=repr(exception))
    job.workspace["failure_hook_ran"] = True
