"""``Job.snoozes``: how often a job's tasks asked to run their step again later.

Added with ``ALTER TABLE ... ADD COLUMN`` on every database: Django's own AddField
would rebuild the job table on SQLite (a NOT NULL column with a default), which drops
the raw indexes of migrations 0008 and 0009. The column keeps a database default of
0, which Django never relies on (it always writes the value).
"""

from django.db import migrations, models

COLUMN = {
    "postgresql": "integer NOT NULL DEFAULT 0 CHECK (snoozes >= 0)",
    "mysql": "integer UNSIGNED NOT NULL DEFAULT 0",
    "sqlite": "integer unsigned NOT NULL DEFAULT 0 CHECK (snoozes >= 0)",
}


def add_column(apps, schema_editor):
    definition = COLUMN[schema_editor.connection.vendor]
    schema_editor.execute(f"ALTER TABLE django_dbq_job ADD COLUMN snoozes {definition}")


def drop_column(apps, schema_editor):
    schema_editor.execute("ALTER TABLE django_dbq_job DROP COLUMN snoozes")


class Migration(migrations.Migration):
    dependencies = [("django_dbq", "0009_active_unique_keys_and_exact_names")]

    operations = [
        migrations.SeparateDatabaseAndState(
            state_operations=[
                migrations.AddField(
                    model_name="job",
                    name="snoozes",
                    field=models.PositiveIntegerField(default=0),
                )
            ],
            database_operations=[migrations.RunPython(add_column, drop_column)],
        )
    ]
