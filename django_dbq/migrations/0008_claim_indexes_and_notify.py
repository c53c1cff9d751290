"""Indexes shaped for the claim, per database, and the PostgreSQL wake-up trigger.

They are plain SQL because each database needs a different shape:
- PostgreSQL and SQLite: partial indexes over runnable (and leased) rows only, so
  claims cost the same whatever the number of finished rows.
- MariaDB/MySQL have no partial indexes: a generated column holds the queue name
  while a job is runnable (NULL otherwise) and is indexed in claim order.
- PostgreSQL: a trigger NOTIFYs the queue's channel when a job becomes runnable,
  inside the transaction that made it so.

Django does not know these objects: a later migration that makes Django rebuild
the job table on SQLite must create the two partial indexes again.
"""

from django.db import migrations

PARTIAL_INDEXES = [
    (
        "CREATE INDEX dbq_job_runnable ON django_dbq_job (queue_name, priority DESC, created) "
        "WHERE state IN ('NEW', 'READY')",
        "DROP INDEX IF EXISTS dbq_job_runnable",
    ),
    (
        "CREATE INDEX dbq_job_leased ON django_dbq_job (lease_expires_at) "
        "WHERE state IN ('PROCESSING', 'STOPPING')",
        "DROP INDEX IF EXISTS dbq_job_leased",
    ),
]
POSTGRESQL = [
    *PARTIAL_INDEXES,
    (
        "CREATE FUNCTION dbq_notify_runnable() RETURNS trigger LANGUAGE plpgsql AS $$ "
        "BEGIN PERFORM pg_notify('dbq_' || md5(NEW.queue_name), ''); RETURN NULL; END $$",
        "DROP FUNCTION IF EXISTS dbq_notify_runnable()",
    ),
    (
        "CREATE TRIGGER dbq_job_runnable_notify AFTER INSERT OR UPDATE OF state ON django_dbq_job "
        "FOR EACH ROW WHEN (NEW.state IN ('NEW', 'READY')) EXECUTE FUNCTION dbq_notify_runnable()",
        "DROP TRIGGER IF EXISTS dbq_job_runnable_notify ON django_dbq_job",
    ),
]
SQLITE = PARTIAL_INDEXES
MYSQL = [
    (
        "ALTER TABLE django_dbq_job ADD COLUMN dbq_runnable_queue varchar(100) AS "
        "(CASE WHEN state IN ('NEW', 'READY') THEN queue_name END) VIRTUAL",
        "ALTER TABLE django_dbq_job DROP COLUMN dbq_runnable_queue",
    ),
    (
        "CREATE INDEX dbq_job_runnable ON django_dbq_job "
        "(dbq_runnable_queue, priority DESC, created)",
        "DROP INDEX dbq_job_runnable ON django_dbq_job",
    ),
    (
        "CREATE INDEX dbq_job_leased ON django_dbq_job (state, lease_expires_at)",
        "DROP INDEX dbq_job_leased ON django_dbq_job",
    ),
]
STATEMENTS = {"postgresql": POSTGRESQL, "sqlite": SQLITE, "mysql": MYSQL}


def forwards(apps, schema_editor):
    for create, _ in STATEMENTS.get(schema_editor.connection.vendor, []):
        schema_editor.execute(create)


def backwards(apps, schema_editor):
    for _, drop in reversed(STATEMENTS.get(schema_editor.connection.vendor, [])):
        schema_editor.execute(drop)


class Migration(migrations.Migration):
    # MySQL cannot run DDL inside a transaction; the statements are few and idempotent to retry.
    atomic = False
    dependencies = [("django_dbq", "0007_leases_retries_schedules")]

    operations = [migrations.RunPython(forwards, backwards)]
