"""Run inside ``manage.py shell`` on a scratch database by tests/test_upgrade.py.

``seed()`` turns a database migrated to ``0001_squashed`` into what django-db-queue
3.3.0 leaves behind (its six migration names, rows in the 3.x columns only);
``dump()`` prints the jobs as JSON once the new migrations ran.
"""

import datetime
import json
import uuid

from django.db import connection, models

# django-db-queue 3.3.0's six migrations, as its users' django_migrations tables list them.
OLD_MIGRATIONS = [
    "0001_initial",
    "0002_auto_20151016_1027",
    "0003_auto_20180713_1000",
    "0004_auto_20210818_0247",
    "0005_job_run_after",
    "0006_alter_job_state",
]
OLD_ROWS = [
    # id, name, state, next_task, workspace, queue, priority
    (uuid.UUID(int=1), "chain", "READY", "tests.jobs.step_two", {"one": 5}, "default", 0),
    (uuid.UUID(int=2), "noop", "NEW", "tests.jobs.noop", None, "default", 0),
    (uuid.UUID(int=3), "chain", "COMPLETE", "", {"done": True}, "default", 0),
    (uuid.UUID(int=4), "failing", "FAILED", "tests.jobs.raise_error", {}, "other", 5),
]


def seed() -> None:
    when = datetime.datetime(2024, 5, 1, 12, 0, tzinfo=datetime.UTC)
    when = connection.ops.adapt_datetimefield_value(when)
    uuid_field, json_field = models.UUIDField(), models.JSONField(null=True)
    with connection.cursor() as cursor:
        cursor.execute("DELETE FROM django_migrations WHERE app = 'django_dbq'")
        for name in OLD_MIGRATIONS:
            cursor.execute(
                "INSERT INTO django_migrations (app, name, applied) VALUES ('django_dbq', %s, %s)",
                [name, when],
            )
        for pk, name, state, next_task, workspace, queue, priority in OLD_ROWS:
            cursor.execute(
                "INSERT INTO django_dbq_job (id, created, modified, name, state, next_task, "
                "workspace, queue_name, priority, run_after) "
                "VALUES (%s, %s, %s, %s, %s, %s, %s, %s, %s, NULL)",
                [
                    uuid_field.get_db_prep_value(pk, connection),
                    when,
                    when,
                    name,
                    state,
                    next_task,
                    json_field.get_db_prep_save(workspace, connection),
                    queue,
                    priority,
                ],
            )


def dump() -> None:
    from django_dbq.models import Job

    rows = Job.objects.order_by("id").values("id", "state", "workspace", "errors", "priority")
    print(json.dumps([{**row, "id": str(row["id"])} for row in rows]))  # noqa: T201
