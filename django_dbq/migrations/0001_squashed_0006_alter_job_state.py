"""The job table exactly as django-db-queue 3.3.0 left it.

It replaces that package's six migrations, so a database migrated by 3.3.0 is
taken as already at this point and only the migrations after it run.
"""

import uuid

from django.db import migrations, models


class Migration(migrations.Migration):
    initial = True

    replaces = [
        ("django_dbq", "0001_initial"),
        ("django_dbq", "0002_auto_20151016_1027"),
        ("django_dbq", "0003_auto_20180713_1000"),
        ("django_dbq", "0004_auto_20210818_0247"),
        ("django_dbq", "0005_job_run_after"),
        ("django_dbq", "0006_alter_job_state"),
    ]

    dependencies = []

    operations = [
        migrations.CreateModel(
            name="Job",
            fields=[
                (
                    "id",
                    models.UUIDField(
                        default=uuid.uuid4, editable=False, primary_key=True, serialize=False
                    ),
                ),
                ("created", models.DateTimeField(auto_now_add=True, db_index=True)),
                ("modified", models.DateTimeField(auto_now=True)),
                ("name", models.CharField(max_length=100)),
                (
                    "state",
                    models.CharField(
                        choices=[
                            ("NEW", "New"),
                            ("READY", "Ready"),
                            ("PROCESSING", "Processing"),
                            ("STOPPING", "Stopping"),
                            ("FAILED", "Failed"),
                            ("COMPLETE", "Complete"),
                        ],
                        db_index=True,
                        default="NEW",
                        max_length=20,
                    ),
                ),
                ("next_task", models.CharField(blank=True, max_length=100)),
                ("workspace", models.JSONField(null=True)),
                (
                    "queue_name",
                    models.CharField(db_index=True, default="default", max_length=20),
                ),
                ("priority", models.SmallIntegerField(db_index=True, default=0)),
                ("run_after", models.DateTimeField(db_index=True, null=True)),
            ],
            options={"ordering": ["-priority", "created"]},
        ),
    ]
