"""Runs one ``hook_probe`` job to its end under django-db-queue 3.3.0
(see tests/processes/test_drop_in.py).

Usage: run_hooks.py DB_PATH WORKSPACE_JSON; prints the finished job as one JSON line.
The hooks write what they saw to ``$DBQ_HOOK_LOG``.
"""

import json
import sys

import django
from django.conf import settings

database, workspace = sys.argv[1], json.loads(sys.argv[2])
settings.configure(
    INSTALLED_APPS=["django_dbq"],
    DATABASES={"default": {"ENGINE": "django.db.backends.sqlite3", "NAME": database}},
    USE_TZ=True,
    DEFAULT_AUTO_FIELD="django.db.models.AutoField",
    JOBS={
        "hook_probe": {
            "tasks": ["hook_probe.first", "hook_probe.second"],
            "pre_task_hook": "hook_probe.pre_task",
            "post_task_hook": "hook_probe.post_task",
            "failure_hook": "hook_probe.failure",
        }
    },
)
django.setup()

from django.core.management import call_command

from django_dbq.management.commands.worker import Worker
from django_dbq.models import Job

call_command("migrate", verbosity=0)
job = Job.objects.create(name="hook_probe", workspace=workspace)
worker = Worker("default", 0)
for _ in range(10):  # 3.x runs one step per call
    worker._process_job()
    job.refresh_from_db()
    if job.state in (Job.STATES.COMPLETE, Job.STATES.FAILED):
        break
print(json.dumps({"state": str(job.state), "next_task": job.next_task, "workspace": job.workspace}))
