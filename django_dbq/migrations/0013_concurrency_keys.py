"""Concurrency keys (``django_dbq.keys``): the job's key and limit, the key rows, the indexes.

- ``Job.concurrency_key`` / ``concurrency_limit`` and the ``ConcurrencyKey`` table.
- The claim index of migration 0008 now covers runnable jobs *without* a key only: a
  worker's one-statement claim never reads past keyed jobs (a hot key with thousands
  waiting costs it nothing). Keyed runnable jobs get an index of their own in claim
  order, and held keyed jobs one by key, which the claims count under the key's lock.
  PostgreSQL and SQLite: partial indexes. MariaDB/MySQL: the generated column
  ``dbq_runnable_queue`` is NULL for keyed jobs, and ``dbq_keyed_queue`` holds the queue
  of a runnable keyed job; the key gets the binary collation the other compared
  columns have (migration 0009), so ``Account:1`` is not ``account:1``.

Adding two nullable columns does not rebuild the table on SQLite, so the raw indexes
of migrations 0008 and 0009 stay.
"""

from django.db import migrations, models

RUNNABLE = "state IN ('NEW', 'READY')"
HELD = "state IN ('PROCESSING', 'STOPPING')"
CLAIM_ORDER_COLUMNS = "priority DESC, created"

PARTIAL = [
    (
        "DROP INDEX IF EXISTS dbq_job_runnable",
        f"CREATE INDEX dbq_job_runnable ON django_dbq_job (queue_name, {CLAIM_ORDER_COLUMNS}) "
        f"WHERE {RUNNABLE}",
    ),
    (
        f"CREATE INDEX dbq_job_runnable ON django_dbq_job (queue_name, {CLAIM_ORDER_COLUMNS}) "
        f"WHERE {RUNNABLE} AND concurrency_key IS NULL",
        "DROP INDEX IF EXISTS dbq_job_runnable",
    ),
    (
        f"CREATE INDEX dbq_job_keyed ON django_dbq_job (queue_name, {CLAIM_ORDER_COLUMNS}) "
        f"WHERE {RUNNABLE} AND concurrency_key IS NOT NULL",
        "DROP INDEX IF EXISTS dbq_job_keyed",
    ),
    (
        "CREATE INDEX dbq_job_key_held ON django_dbq_job (concurrency_key) "
        f"WHERE {HELD} AND concurrency_key IS NOT NULL",
        "DROP INDEX IF EXISTS dbq_job_key_held",
    ),
]


def _generated_queue(condition: str) -> str:
    return f"AS (CASE WHEN {RUNNABLE} AND {condition} THEN queue_name END) VIRTUAL"


def _mysql_exact(cursor) -> str:
    """The character set and binary collation of the job table's compared columns (0009)."""
    cursor.execute(
        "SELECT CHARACTER_SET_NAME, COLLATION_NAME FROM information_schema.COLUMNS WHERE "
        "TABLE_SCHEMA = DATABASE() AND TABLE_NAME = 'django_dbq_job' AND COLUMN_NAME = 'queue_name'"
    )
    charset, collation = cursor.fetchone()
    return f"CHARACTER SET {charset} COLLATE {collation}"


def _mysql(schema_editor, forwards: bool) -> None:
    with schema_editor.connection.cursor() as cursor:
        exact = _mysql_exact(cursor)
    if forwards:
        changes = [
            f"MODIFY concurrency_key varchar(200) {exact} NULL",
            "MODIFY dbq_runnable_queue varchar(100) "
            f"{exact} {_generated_queue('concurrency_key IS NULL')}",
            "ADD COLUMN dbq_keyed_queue varchar(100) "
            f"{exact} {_generated_queue('concurrency_key IS NOT NULL')}",
            f"ADD INDEX dbq_job_keyed (dbq_keyed_queue, {CLAIM_ORDER_COLUMNS})",
            "ADD INDEX dbq_job_key_held (concurrency_key, state)",
        ]
        schema_editor.execute(
            f"ALTER TABLE django_dbq_concurrencykey MODIFY `key` varchar(200) {exact} NOT NULL"
        )
    else:
        changes = [
            "DROP INDEX dbq_job_key_held",
            "DROP INDEX dbq_job_keyed",
            "DROP COLUMN dbq_keyed_queue",
            "MODIFY dbq_runnable_queue varchar(100) "
            f"{exact} AS (CASE WHEN {RUNNABLE} THEN queue_name END) VIRTUAL",
        ]
    # One statement: the table is copied once.
    schema_editor.execute(f"ALTER TABLE django_dbq_job {', '.join(changes)}")


def forwards(apps, schema_editor):
    vendor = schema_editor.connection.vendor
    if vendor in ("postgresql", "sqlite"):
        for create, _ in PARTIAL:
            schema_editor.execute(create)
    elif vendor == "mysql":
        _mysql(schema_editor, forwards=True)


def backwards(apps, schema_editor):
    vendor = schema_editor.connection.vendor
    if vendor in ("postgresql", "sqlite"):
        for _, drop in reversed(PARTIAL):
            schema_editor.execute(drop)
    elif vendor == "mysql":
        _mysql(schema_editor, forwards=False)


class Migration(migrations.Migration):
    dependencies = [("django_dbq", "0012_queue_rate_limits")]

    operations = [
        migrations.AddField(
            model_name="job",
            name="concurrency_key",
            field=models.CharField(blank=True, max_length=200, null=True),
        ),
        migrations.AddField(
            model_name="job",
            name="concurrency_limit",
            field=models.PositiveIntegerField(blank=True, null=True),
        ),
        migrations.CreateModel(
            name="ConcurrencyKey",
            fields=[
                ("key", models.CharField(max_length=200, primary_key=True, serialize=False)),
            ],
        ),
        # MariaDB/MySQL cannot run DDL in a transaction; PostgreSQL's runs in the migration's.
        migrations.RunPython(forwards, backwards, atomic=False),
    ]
