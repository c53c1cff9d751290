"""Enqueue a few jobs, run a real worker until the queue is drained, print what happened."""

import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "example.settings")

import django  # noqa: E402

django.setup()

from django.core.management import call_command  # noqa: E402

from django_dbq.models import Job  # noqa: E402

TEXTS = [
    "the quick brown fox jumps over the lazy dog the end",
    "to be or not to be that is the question",
    "a queue is a line and a line is a queue",
]


def main() -> None:
    call_command("migrate", verbosity=0)
    Job.objects.all().delete()
    jobs = [Job.objects.create(name="word_report", workspace={"text": text}) for text in TEXTS]
    print(f"Enqueued {len(jobs)} 'word_report' jobs: {Job.get_queue_depths()}")
    print("Running: python manage.py worker --drain")
    subprocess.run(
        [sys.executable, str(ROOT / "manage.py"), "worker", "--drain"],
        check=True,
        cwd=ROOT,
        env={**os.environ, "DJANGO_SETTINGS_MODULE": "example.settings"},
    )
    for job in Job.objects.filter(pk__in=[job.pk for job in jobs]).order_by("created"):
        print(f"{job.id}  {job.state:<9} {job.workspace['summary']}")
    finished = Job.objects.filter(state=Job.STATES.COMPLETE).count()
    print(f"{finished} of {len(jobs)} jobs COMPLETE; queue depths now {Job.get_queue_depths()}")


if __name__ == "__main__":
    main()
