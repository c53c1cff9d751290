"""Workflows (``django_dbq.workflows``): the ``WAITING`` state, workflows and dependencies.

- ``Workflow`` and ``Dependency`` (one row per edge) are new tables.
- The job gets ``workflow``, ``waiting_for`` and ``dependents``, all nullable: no table
  is rebuilt on SQLite, so the raw indexes of migrations 0008, 0009 and 0013 stay.
- ``WAITING`` is a new choice of ``state``: no database change. The claim indexes, the
  generated claim columns on MariaDB/MySQL and PostgreSQL's wake-up trigger know only
  ``NEW`` and ``READY``: a waiting job is never claimed, and wakes no worker until it
  becomes ``NEW``.
"""

import uuid

import django.db.models.deletion
import django.utils.timezone
from django.db import migrations, models


class Migration(migrations.Migration):
    dependencies = [
        ("django_dbq", "0013_concurrency_keys"),
    ]

    operations = [
        migrations.CreateModel(
            name="Workflow",
            fields=[
                (
                    "id",
                    models.UUIDField(
                        default=uuid.uuid4, editable=False, primary_key=True, serialize=False
                    ),
                ),
                ("name", models.CharField(blank=True, max_length=200)),
                ("created", models.DateTimeField(default=django.utils.timezone.now)),
                ("finished_at", models.DateTimeField(blank=True, null=True)),
                ("failed", models.BooleanField(default=False)),
            ],
            options={
                "ordering": ["-created"],
            },
        ),
        migrations.AddField(
            model_name="job",
            name="dependents",
            field=models.PositiveIntegerField(blank=True, editable=False, null=True),
        ),
        migrations.AddField(
            model_name="job",
            name="waiting_for",
            field=models.PositiveIntegerField(blank=True, editable=False, null=True),
        ),
        migrations.AlterField(
            model_name="job",
            name="state",
            field=models.CharField(
                choices=[
                    ("NEW", "New"),
                    ("READY", "Ready"),
                    ("PROCESSING", "Processing"),
                    ("STOPPING", "Stopping"),
                    ("FAILED", "Failed"),
                    ("COMPLETE", "Complete"),
                    ("CANCELLED", "Cancelled"),
                    ("WAITING", "Waiting"),
                ],
                default="NEW",
                max_length=20,
            ),
        ),
        migrations.CreateModel(
            name="Dependency",
            fields=[
                ("id", models.BigAutoField(primary_key=True, serialize=False)),
                ("on_failure", models.CharField(default="cancel", max_length=10)),
                ("satisfied", models.BooleanField(default=False)),
                ("blocked", models.BooleanField(default=False)),
                (
                    "depends_on",
                    models.ForeignKey(
                        on_delete=django.db.models.deletion.CASCADE,
                        related_name="dependents_of",
                        to="django_dbq.job",
                    ),
                ),
                (
                    "job",
                    models.ForeignKey(
                        on_delete=django.db.models.deletion.CASCADE,
                        related_name="dependencies",
                        to="django_dbq.job",
                    ),
                ),
            ],
        ),
        migrations.AddField(
            model_name="job",
            name="workflow",
            field=models.ForeignKey(
                blank=True,
                db_index=False,
                null=True,
                on_delete=django.db.models.deletion.SET_NULL,
                related_name="jobs",
                to="django_dbq.workflow",
            ),
        ),
        migrations.AddIndex(
            model_name="job",
            index=models.Index(fields=["workflow", "state"], name="dbq_job_workflow_state"),
        ),
        migrations.AddConstraint(
            model_name="dependency",
            constraint=models.UniqueConstraint(
                fields=("job", "depends_on"), name="dbq_dependency_unique"
            ),
        ),
    ]
