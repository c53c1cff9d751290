"""MariaDB/MySQL: the admin's activity charts read the finished jobs from one index alone.

The charts read the jobs that ended in the last hour and day (``admin/activity.py``).
PostgreSQL and SQLite read them through the partial ``finished_at`` index of migration
0015. InnoDB has no partial index, and read a day's rows (a seventh of a table of a
week's jobs) with a full scan of the table: 1.2 s on 1M rows. Here the ``finished_at``
index becomes a covering one, ``(finished_at, queue_name, name, dbq_finished_state,
dbq_run_seconds)``, over two virtual columns that stay NULL until the job finishes:
a claim or a heartbeat changes none of the index's columns (the queue and the name
never change), so the index is written when a job finishes, as the one it replaces was.
"""

from django.db import migrations

FORWARDS = [
    "ADD COLUMN dbq_finished_state varchar(20) AS (IF(finished_at IS NULL, NULL, state)) VIRTUAL",
    "ADD COLUMN dbq_run_seconds double "
    "AS (IF(finished_at IS NULL OR started_at IS NULL, NULL, "
    "TIMESTAMPDIFF(MICROSECOND, started_at, finished_at) / 1000000)) VIRTUAL",
    "DROP INDEX dbq_job_finished",
    "ADD INDEX dbq_job_finished "
    "(finished_at, queue_name, name, dbq_finished_state, dbq_run_seconds)",
]
BACKWARDS = [
    "DROP INDEX dbq_job_finished",
    "DROP COLUMN dbq_run_seconds",
    "DROP COLUMN dbq_finished_state",
    "ADD INDEX dbq_job_finished (finished_at)",
]


def alter(changes):
    def run(apps, schema_editor):
        if schema_editor.connection.vendor == "mysql":
            # One statement: the table is rebuilt once.
            schema_editor.execute(f"ALTER TABLE django_dbq_job {', '.join(changes)}")

    return run


class Migration(migrations.Migration):
    dependencies = [("django_dbq", "0015_observability")]

    operations = [migrations.RunPython(alter(FORWARDS), alter(BACKWARDS), atomic=False)]
