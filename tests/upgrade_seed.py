"""Jobs for tests/processes/test_upgrade.py: made by django-db-queue 3.3.0, read back by ours.

``seed()`` runs in the old project (tests/legacy_venv.py), on 3.3.0's own models and
worker, and prints the ids of the jobs it left in each state as JSON. ``dump()``
runs under ``manage.py shell`` once our migrations ran, and prints every job.
"""

import datetime
import json


def _run_one_step(job, queue):
    """What a 3.3.0 worker does with one job of ``queue``: claim it, run one step, save."""
    from django_dbq.management.commands.worker import Worker

    Worker(queue, 0)._process_job()
    job.refresh_from_db()
    return job


def seed() -> None:
    from django.utils import timezone

    from django_dbq.models import Job

    made = {}
    # Each job in a queue of its own, so that 3.3.0's worker takes exactly that one.
    made["ready"] = _run_one_step(Job.objects.create(name="chain", queue_name="ready"), "ready")
    made["complete"] = _run_one_step(Job.objects.create(name="noop", queue_name="done"), "done")
    made["failed"] = _run_one_step(
        Job.objects.create(name="failing", queue_name="other", priority=5), "other"
    )
    # A 3.3.0 worker that died in the second step left the job PROCESSING; one that was
    # stopping (SIGTERM) when it died left it STOPPING. Neither has a lease.
    for state in ("PROCESSING", "STOPPING"):
        job = Job.objects.create(name="chain", queue_name=state.lower(), workspace={"input": 10})
        job = _run_one_step(job, state.lower())
        job.state = state  # as 3.3.0's worker writes it (save(), then the task runs)
        job.save()
        made[state.lower()] = job
    made["new"] = Job.objects.create(name="chain", workspace={"input": 1})
    made["later"] = Job.objects.create(
        name="noop", queue_name="later", run_after=timezone.now() + datetime.timedelta(days=1)
    )
    print(json.dumps({label: str(job.pk) for label, job in made.items()}))  # noqa: T201


def dump() -> None:
    from django_dbq.models import Job

    rows = Job.objects.order_by("id").values(
        "id", "state", "next_task", "workspace", "errors", "attempts", "priority", "queue_name"
    )
    print(json.dumps([{**row, "id": str(row["id"])} for row in rows]))  # noqa: T201
