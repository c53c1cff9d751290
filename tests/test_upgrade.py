"""Installing into a bare project, and upgrading a database migrated by django-db-queue 3.3.0.

Both run ``manage.py`` in subprocesses against their own temporary SQLite file.
"""

import json
import os
import sqlite3
import subprocess
import sys

import pytest

from tests.conftest import ROOT

# django-db-queue 3.3.0's six migrations, as its users' django_migrations tables list them.
OLD_MIGRATIONS = [
    "0001_initial",
    "0002_auto_20151016_1027",
    "0003_auto_20180713_1000",
    "0004_auto_20210818_0247",
    "0005_job_run_after",
    "0006_alter_job_state",
]
# The job table those migrations leave on SQLite.
OLD_SCHEMA = """
CREATE TABLE "django_migrations" ("id" integer NOT NULL PRIMARY KEY AUTOINCREMENT,
    "app" varchar(255) NOT NULL, "name" varchar(255) NOT NULL, "applied" datetime NOT NULL);
CREATE TABLE "django_dbq_job" ("id" char(32) NOT NULL PRIMARY KEY, "created" datetime NOT NULL,
    "modified" datetime NOT NULL, "name" varchar(100) NOT NULL, "state" varchar(20) NOT NULL,
    "next_task" varchar(100) NOT NULL,
    "workspace" text NULL CHECK ((JSON_VALID("workspace") OR "workspace" IS NULL)),
    "queue_name" varchar(20) NOT NULL, "priority" smallint NOT NULL, "run_after" datetime NULL);
CREATE INDEX "django_dbq_job_created_old" ON "django_dbq_job" ("created");
CREATE INDEX "django_dbq_job_state_old" ON "django_dbq_job" ("state");
CREATE INDEX "django_dbq_job_queue_name_old" ON "django_dbq_job" ("queue_name");
CREATE INDEX "django_dbq_job_priority_old" ON "django_dbq_job" ("priority");
CREATE INDEX "django_dbq_job_run_after_old" ON "django_dbq_job" ("run_after");
"""
OLD_ROWS = [
    # id, name, state, next_task, workspace, queue, priority
    ("a" * 32, "chain", "READY", "tests.jobs.step_two", '{"one": 5}', "default", 0),
    ("b" * 32, "noop", "NEW", "tests.jobs.noop", None, "default", 0),
    ("c" * 32, "chain", "COMPLETE", "", '{"done": true}', "default", 0),
    ("d" * 32, "failing", "FAILED", "tests.jobs.raise_error", "{}", "other", 5),
]


def manage(db_path, *args, use_tz="1"):
    env = dict(os.environ)
    env.update(
        DJANGO_SETTINGS_MODULE="tests.settings_minimal",
        DBQ_MINIMAL_DB=str(db_path),
        DBQ_TEST_USE_TZ=use_tz,
    )
    env.pop("DATABASE_URL", None)
    result = subprocess.run(
        [sys.executable, str(ROOT / "manage.py"), *args],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    return result


def ok(result):
    assert result.returncode == 0, f"{result.stdout}\n{result.stderr}"
    return result.stdout


def job_rows(db_path):
    with sqlite3.connect(db_path) as db:
        db.row_factory = sqlite3.Row
        return {row["id"]: dict(row) for row in db.execute("SELECT * FROM django_dbq_job")}


@pytest.mark.parametrize("use_tz", ["1", "0"])
def test_the_app_works_as_the_only_installed_app(tmp_path, use_tz):
    db = tmp_path / "minimal.sqlite3"
    ok(manage(db, "migrate", use_tz=use_tz))
    assert "no issues" in ok(manage(db, "check", use_tz=use_tz))
    job_id = ok(
        manage(db, "create_job", "chain", "--workspace", '{"input": 1}', use_tz=use_tz)
    ).strip()
    assert ok(manage(db, "queue_depth", use_tz=use_tz)) == "event=queue_depths default=1\n"
    assert 'Starting job worker for queue "default"' in ok(
        manage(db, "worker", "--drain", use_tz=use_tz)
    )
    [row] = job_rows(db).values()
    assert row["id"] == job_id.replace("-", "")
    assert row["state"] == "COMPLETE"
    assert json.loads(row["workspace"]) == {"input": 1, "one": 2, "two": 4, "three": 7}
    assert ok(manage(db, "delete_old_jobs", "--hours", "0", use_tz=use_tz)) == "Deleted 1 job(s)\n"


def test_a_database_migrated_by_django_db_queue_3_3_upgrades_in_place(tmp_path):
    db = tmp_path / "old.sqlite3"
    with sqlite3.connect(db) as old:
        old.executescript(OLD_SCHEMA)
        old.executemany(
            "INSERT INTO django_migrations (app, name, applied) VALUES ('django_dbq', ?, "
            "'2024-05-01 12:00:00')",
            [(name,) for name in OLD_MIGRATIONS],
        )
        old.executemany(
            "INSERT INTO django_dbq_job (id, name, state, next_task, workspace, queue_name, "
            "priority, created, modified, run_after) VALUES (?, ?, ?, ?, ?, ?, ?, "
            "'2024-05-01 12:00:00', '2024-05-01 12:00:00', NULL)",
            OLD_ROWS,
        )
    plan = ok(manage(db, "migrate", "django_dbq", "--plan"))
    assert "0007_leases_retries_schedules" in plan and "0008_claim_indexes_and_notify" in plan
    assert "0001_squashed" not in plan
    output = ok(manage(db, "migrate", "django_dbq"))
    assert "Applying django_dbq.0007_leases_retries_schedules... OK" in output
    assert "Applying django_dbq.0008_claim_indexes_and_notify... OK" in output
    assert "0001" not in output
    shown = ok(manage(db, "showmigrations", "django_dbq"))
    assert "[ ]" not in shown and "[X] 0008_claim_indexes_and_notify" in shown
    ok(manage(db, "makemigrations", "django_dbq", "--check", "--dry-run"))

    # The old rows keep their meaning: waiting jobs run on from their next task.
    assert (
        ok(manage(db, "queue_depth", "default", "other"))
        == "event=queue_depths default=2 other=0\n"
    )
    ok(manage(db, "worker", "--drain"))
    rows = job_rows(db)
    assert rows["a" * 32]["state"] == "COMPLETE"
    assert json.loads(rows["a" * 32]["workspace"]) == {"one": 5, "two": 10, "three": 13}
    assert rows["b" * 32]["state"] == "COMPLETE"
    assert rows["c" * 32]["state"] == "COMPLETE" and rows["d" * 32]["state"] == "FAILED"
    assert rows["d" * 32]["priority"] == 5 and json.loads(rows["d" * 32]["errors"]) == []
    # Finished old jobs can be retried and deleted with the new commands.
    failed_id = "dddddddd-dddd-dddd-dddd-dddddddddddd"
    assert "queued again from tests.jobs.raise_error" in ok(manage(db, "retry_job", failed_id))
    assert ok(manage(db, "delete_old_jobs")) == "Deleted 3 job(s)\n"
