"""Installing into a bare project, and upgrading a database migrated by django-db-queue 3.3.0.

Both run ``manage.py`` in subprocesses against their own temporary SQLite file.
"""

import json
import os
import sqlite3
import subprocess
import sys

import pytest
from django.db import connection

from tests.conftest import ROOT
from tests.upgrade_seed import OLD_MIGRATIONS  # django-db-queue 3.3.0's six

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


def manage(database, *args, use_tz="1"):
    """``manage.py`` on the scratch ``database`` (a SQLite file path or a fixture's env)."""
    env = dict(os.environ)
    env.pop("DATABASE_URL", None)
    env.pop("DBQ_TEST_DATABASE_NAME", None)
    env.update(DJANGO_SETTINGS_MODULE="tests.settings_minimal", DBQ_TEST_USE_TZ=use_tz)
    env.update(database if isinstance(database, dict) else {"DBQ_MINIMAL_DB": str(database)})
    return subprocess.run(
        [sys.executable, str(ROOT / "manage.py"), *args],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )


def ok(result):
    assert result.returncode == 0, f"{result.stdout}\n{result.stderr}"
    return result.stdout


@pytest.fixture
def scratch_database(tmp_path):
    """An empty database next to the test database, on the same server (a file for SQLite)."""
    if connection.vendor == "sqlite":
        yield {"DBQ_MINIMAL_DB": str(tmp_path / "scratch.sqlite3")}
        return
    name = f"{connection.settings_dict['NAME']}_scratch"
    quoted = connection.ops.quote_name(name)
    charset = " CHARACTER SET utf8mb4" if connection.vendor == "mysql" else ""
    with connection.cursor() as cursor:
        cursor.execute(f"DROP DATABASE IF EXISTS {quoted}")
        cursor.execute(f"CREATE DATABASE {quoted}{charset}")
    try:
        yield {"DBQ_MINIMAL_DATABASE_URL": os.environ["DATABASE_URL"], "DBQ_MINIMAL_DB": name}
    finally:
        with connection.cursor() as cursor:
            cursor.execute(f"DROP DATABASE IF EXISTS {quoted}")


def shell(database, code):
    return ok(manage(database, "shell", "-v", "0", "-c", code))


def job_rows(db_path):
    with sqlite3.connect(db_path) as db:
        db.row_factory = sqlite3.Row
        return {row["id"]: dict(row) for row in db.execute("SELECT * FROM django_dbq_job")}


@pytest.mark.django_db(transaction=True)
@pytest.mark.parametrize("use_tz", ["1", "0"])
def test_the_app_works_as_the_only_installed_app(scratch_database, use_tz):
    db = scratch_database
    ok(manage(db, "migrate", use_tz=use_tz))
    assert "no issues" in ok(manage(db, "check", use_tz=use_tz))
    job_id = ok(
        manage(db, "create_job", "chain", "--workspace", '{"input": 1}', use_tz=use_tz)
    ).strip()
    assert ok(manage(db, "queue_depth", use_tz=use_tz)) == "event=queue_depths default=1\n"
    assert 'Starting job worker for queue "default"' in ok(
        manage(db, "worker", "--drain", use_tz=use_tz)
    )
    [row] = json.loads(shell(db, "from tests.upgrade_seed import dump; dump()"))
    assert row["id"] == job_id
    assert row["state"] == "COMPLETE"
    assert row["workspace"] == {"input": 1, "one": 2, "two": 4, "three": 7}
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


@pytest.mark.django_db(transaction=True)
def test_a_3_3_database_on_this_backend_upgrades_in_place(scratch_database):
    db = scratch_database
    # 0001_squashed is the 3.3.0 table; seed() leaves the six 3.x migration names and rows.
    ok(manage(db, "migrate", "django_dbq", "0001_squashed_0006_alter_job_state"))
    shell(db, "from tests.upgrade_seed import seed; seed()")
    output = ok(manage(db, "migrate"))
    assert "Applying django_dbq.0007_leases_retries_schedules... OK" in output
    assert "Applying django_dbq.0008_claim_indexes_and_notify... OK" in output
    assert "Applying django_dbq.0001" not in output
    assert "[ ]" not in ok(manage(db, "showmigrations", "django_dbq"))
    ok(manage(db, "makemigrations", "django_dbq", "--check", "--dry-run"))
    assert ok(manage(db, "queue_depth", "default", "other")) == (
        "event=queue_depths default=2 other=0\n"
    )
    ok(manage(db, "worker", "--drain"))
    rows = json.loads(shell(db, "from tests.upgrade_seed import dump; dump()"))
    by_id = {row["id"][-1]: row for row in rows}
    assert by_id["1"]["state"] == "COMPLETE"
    assert by_id["1"]["workspace"] == {"one": 5, "two": 10, "three": 13}
    assert by_id["2"]["state"] == "COMPLETE"
    assert by_id["3"]["state"] == "COMPLETE" and by_id["3"]["workspace"] == {"done": True}
    assert by_id["4"]["state"] == "FAILED" and by_id["4"]["priority"] == 5
    assert by_id["4"]["errors"] == []
    ok(manage(db, "retry_job", "00000000-0000-0000-0000-000000000004"))
    ok(manage(db, "worker", "other", "--drain"))
    rows = json.loads(shell(db, "from tests.upgrade_seed import dump; dump()"))
    assert rows[-1]["state"] == "FAILED" and rows[-1]["errors"][0]["type"] == "ValueError"


def test_the_model_retry_and_schedule_suites_pass_with_use_tz_false():
    """Runs those suites again in a child pytest with ``USE_TZ = False`` on this backend."""
    env = dict(os.environ)
    env["DBQ_TEST_USE_TZ"] = "0"
    env["DBQ_TEST_DB_SUFFIX"] = env.get("DBQ_TEST_DB_SUFFIX", "") + "_notz"
    files = ["tests/test_models.py", "tests/test_retries.py", "tests/test_schedule.py"]
    result = subprocess.run(
        [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", *files],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert result.returncode == 0, result.stdout[-5000:] + result.stderr[-2000:]
    assert " passed" in result.stdout and " failed" not in result.stdout
