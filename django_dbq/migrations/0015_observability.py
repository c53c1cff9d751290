"""What the queue shows of itself (``docs/observability.md``).

- ``Job.progress``: what the task last reported (``job.set_progress``);
- ``Job.trace_context``: the OpenTelemetry trace the job was created in;
- an index of the ``WAITING`` jobs by queue (PostgreSQL and SQLite: partial). The
  metrics' gauges count unfinished jobs in pieces that each match an index's predicate
  (runnable, keyed, held: migrations 0008 and 0013), so that a scrape never reads the
  finished rows, however many; ``WAITING`` rows had no such index. Partial, so plain
  jobs, which never wait, never touch it. MariaDB/MySQL read every piece through the
  ``(state, lease_expires_at)`` index of migration 0008;
- an index of ``finished_at`` (PostgreSQL and SQLite: of the finished rows only, so a
  running job's writes never touch it): the admin's activity charts read the jobs that
  ended in the last hour or day through it;
- on PostgreSQL and SQLite, the ``(workflow, state)`` index of migration 0014 covers the
  jobs of a workflow only: every write of every other job (a new row version) used to
  add an entry to it, which paid for the ``finished_at`` index and more.
"""

from django.db import migrations, models

WORKFLOW_STATE = "CREATE INDEX dbq_job_workflow_state ON django_dbq_job (workflow_id, state)"
PARTIAL = [
    "CREATE INDEX dbq_job_waiting ON django_dbq_job (queue_name) WHERE state = 'WAITING'",
    "CREATE INDEX dbq_job_finished ON django_dbq_job (finished_at) WHERE finished_at IS NOT NULL",
    "DROP INDEX IF EXISTS dbq_job_workflow_state",
    f"{WORKFLOW_STATE} WHERE workflow_id IS NOT NULL",
]


def forwards(apps, schema_editor):
    vendor = schema_editor.connection.vendor
    if vendor in ("postgresql", "sqlite"):
        for statement in PARTIAL:
            schema_editor.execute(statement)
    elif vendor == "mysql":
        # The full (workflow_id, state) index of migration 0014 stays: InnoDB needs an
        # index on the foreign key's column, and has no partial ones.
        schema_editor.execute("CREATE INDEX dbq_job_finished ON django_dbq_job (finished_at)")


def backwards(apps, schema_editor):
    vendor = schema_editor.connection.vendor
    if vendor in ("postgresql", "sqlite"):
        for name in ("dbq_job_waiting", "dbq_job_finished", "dbq_job_workflow_state"):
            schema_editor.execute(f"DROP INDEX IF EXISTS {name}")
        schema_editor.execute(WORKFLOW_STATE)
    elif vendor == "mysql":
        schema_editor.execute("DROP INDEX dbq_job_finished ON django_dbq_job")


class Migration(migrations.Migration):
    dependencies = [("django_dbq", "0014_workflows")]

    operations = [
        migrations.AddField(
            model_name="job",
            name="progress",
            field=models.JSONField(blank=True, editable=False, null=True),
        ),
        migrations.AddField(
            model_name="job",
            name="trace_context",
            field=models.JSONField(blank=True, editable=False, null=True),
        ),
        # The (workflow, state) index leaves the model's state: it is raw SQL per database
        # from here on (PostgreSQL and SQLite: of the rows of a workflow only).
        migrations.SeparateDatabaseAndState(
            state_operations=[
                migrations.RemoveIndex(model_name="job", name="dbq_job_workflow_state")
            ]
        ),
        migrations.RunPython(forwards, backwards, atomic=False),
    ]
