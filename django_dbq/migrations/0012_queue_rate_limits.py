"""Queue rate limits (``DBQ_QUEUES`` "rate"): when a queue's last job started.

- ``Queue.last_start_at``: seconds since the Unix epoch on the database server's clock,
  written by each claim of a rate-limited queue under the lock on the queue's row.
- PostgreSQL: the trigger of migration 0011 now fires on a change of ``paused_at``
  only. Those claims update the row at every start; a notification each time would
  wake every worker of the queue for nothing.

The job table is not touched.
"""

from django.db import migrations, models

TRIGGER = (
    "CREATE TRIGGER dbq_queue_state_notify AFTER INSERT OR UPDATE{columns} OR DELETE "
    "ON django_dbq_queue FOR EACH ROW EXECUTE FUNCTION dbq_notify_queue_state()"
)
DROP = "DROP TRIGGER IF EXISTS dbq_queue_state_notify ON django_dbq_queue"


def _replace_trigger(schema_editor, columns: str) -> None:
    if schema_editor.connection.vendor == "postgresql":
        schema_editor.execute(DROP)
        schema_editor.execute(TRIGGER.format(columns=columns))


def forwards(apps, schema_editor):
    _replace_trigger(schema_editor, " OF paused_at")


def backwards(apps, schema_editor):
    _replace_trigger(schema_editor, "")


class Migration(migrations.Migration):
    dependencies = [("django_dbq", "0011_queue_pause_state")]

    operations = [
        migrations.AddField(
            model_name="queue",
            name="last_start_at",
            field=models.FloatField(blank=True, null=True),
        ),
        migrations.RunPython(forwards, backwards),
    ]
