"""The ``Queue`` table: which queues are paused (``django_dbq.queues``).

- PostgreSQL: a trigger notifies a queue's wake-up channel (the one migration 0008's
  trigger uses for new jobs) whenever its row changes, inside the transaction that
  changed it, so waiting workers read the pause state again as soon as it commits.
  Its payload is ``pause`` (job notifications carry none), should a listener want to
  tell the two apart.
- MariaDB/MySQL: the name gets the exact (binary) collation ``Job.queue_name`` has
  since migration 0009, so pausing ``emails`` never pauses ``Emails``.

The job table is not touched.
"""

from django.db import migrations, models

POSTGRESQL = [
    (
        "CREATE FUNCTION dbq_notify_queue_state() RETURNS trigger LANGUAGE plpgsql AS $$ "
        "BEGIN IF TG_OP = 'DELETE' THEN PERFORM pg_notify('dbq_' || md5(OLD.name), 'pause'); "
        "ELSE PERFORM pg_notify('dbq_' || md5(NEW.name), 'pause'); END IF; RETURN NULL; END $$",
        "DROP FUNCTION IF EXISTS dbq_notify_queue_state()",
    ),
    (
        "CREATE TRIGGER dbq_queue_state_notify AFTER INSERT OR UPDATE OR DELETE "
        "ON django_dbq_queue FOR EACH ROW EXECUTE FUNCTION dbq_notify_queue_state()",
        "DROP TRIGGER IF EXISTS dbq_queue_state_notify ON django_dbq_queue",
    ),
]


def _mysql_exact_name(schema_editor) -> None:
    with schema_editor.connection.cursor() as cursor:
        cursor.execute(
            "SELECT CHARACTER_SET_NAME, COLLATION_NAME FROM information_schema.COLUMNS WHERE "
            "TABLE_SCHEMA = DATABASE() AND TABLE_NAME = 'django_dbq_job' "
            "AND COLUMN_NAME = 'queue_name'"
        )
        charset, collation = cursor.fetchone()
    schema_editor.execute(
        "ALTER TABLE django_dbq_queue MODIFY name varchar(100) "
        f"CHARACTER SET {charset} COLLATE {collation} NOT NULL"
    )


def forwards(apps, schema_editor):
    vendor = schema_editor.connection.vendor
    if vendor == "postgresql":
        for create, _ in POSTGRESQL:
            schema_editor.execute(create)
    elif vendor == "mysql":
        _mysql_exact_name(schema_editor)


def backwards(apps, schema_editor):
    # The table goes next (DeleteModel); on PostgreSQL the function must go too.
    if schema_editor.connection.vendor == "postgresql":
        for _, drop in reversed(POSTGRESQL):
            schema_editor.execute(drop)


class Migration(migrations.Migration):
    dependencies = [("django_dbq", "0010_job_snoozes")]

    operations = [
        migrations.CreateModel(
            name="Queue",
            fields=[
                ("name", models.CharField(max_length=100, primary_key=True, serialize=False)),
                ("paused_at", models.DateTimeField(blank=True, null=True)),
            ],
        ),
        # MariaDB/MySQL cannot run DDL in a transaction; PostgreSQL's runs in the migration's.
        migrations.RunPython(forwards, backwards, atomic=False),
    ]
