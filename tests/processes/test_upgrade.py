"""Installing into a bare project, and upgrading a database migrated by django-db-queue 3.3.0.

Both run ``manage.py`` in subprocesses against a scratch database of their own (on
the server the suite runs against, or a SQLite file). The upgrade starts from the
real django-db-queue 3.3.0, installed in a virtualenv of its own (tests/legacy_venv.py).
"""

import json
import os
import subprocess
import sys

import pytest
from django.db import connection

from tests.conftest import ROOT
from tests.legacy_venv import LegacyProject

pytestmark = [pytest.mark.processes, pytest.mark.django_line]

DUMP = "from tests.upgrade_seed import dump; dump()"


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
    [row] = json.loads(shell(db, DUMP))
    assert row["id"] == job_id
    assert row["state"] == "COMPLETE"
    assert row["workspace"] == {"input": 1, "one": 2, "two": 4, "three": 7}
    assert ok(manage(db, "delete_old_jobs", "--hours", "0", use_tz=use_tz)) == "Deleted 1 job(s)\n"


def legacy_database(scratch: dict) -> dict:
    """The scratch database as django-db-queue 3.3.0's project names it (Django settings)."""
    if connection.vendor == "sqlite":
        return {"ENGINE": "django.db.backends.sqlite3", "NAME": scratch["DBQ_MINIMAL_DB"]}
    ours = connection.settings_dict
    database = {key: ours[key] for key in ("ENGINE", "HOST", "PORT", "USER", "PASSWORD")}
    database["NAME"] = scratch["DBQ_MINIMAL_DB"]
    if connection.vendor == "mysql":
        database["OPTIONS"] = {"charset": "utf8mb4"}
    return database


@pytest.mark.django_db(transaction=True)
def test_a_database_migrated_by_django_db_queue_3_3_upgrades_in_place(scratch_database, tmp_path):
    db = scratch_database
    old = LegacyProject(tmp_path / "legacy", connection.vendor, legacy_database(db))
    assert old.version() == "3.3.0"
    assert "Applying django_dbq.0006_alter_job_state... OK" in old.run(
        "-m", "django", "migrate", "django_dbq"
    )
    made = json.loads(old.code("from tests.upgrade_seed import seed; seed()"))

    plan = ok(manage(db, "migrate", "django_dbq", "--plan"))
    assert "0007_leases_retries_schedules" in plan and "0008_claim_indexes_and_notify" in plan
    assert "0001_squashed" not in plan  # 3.3.0's six migrations count as ours
    output = ok(manage(db, "migrate"))
    assert "Applying django_dbq.0007_leases_retries_schedules... OK" in output
    assert "Applying django_dbq.0008_claim_indexes_and_notify... OK" in output
    assert "Applying django_dbq.0001" not in output
    assert "[ ]" not in ok(manage(db, "showmigrations", "django_dbq"))
    ok(manage(db, "makemigrations", "django_dbq", "--check", "--dry-run"))
    queues = ["default", "ready", "processing", "stopping", "other", "later"]
    assert ok(manage(db, "queue_depth", *queues)) == (
        "event=queue_depths default=1 ready=1 processing=0 stopping=0 other=0 later=1\n"
    )

    # Jobs left PROCESSING or STOPPING by 3.3.0's workers have no lease: rescued at once.
    rescue = "from django_dbq.models import Job; print(Job.objects.rescue_lapsed())"
    assert shell(db, rescue).strip() == "2"
    ok(manage(db, "worker", *queues, "--drain"))
    rows = {row["id"]: row for row in json.loads(shell(db, DUMP))}
    job = {label: rows[pk] for label, pk in made.items()}
    # Waiting jobs run on from their next step, with the workspace 3.3.0 saved.
    assert job["new"]["state"] == "COMPLETE"
    assert job["new"]["workspace"] == {"input": 1, "one": 2, "two": 4, "three": 7}
    assert job["ready"]["state"] == "COMPLETE"
    assert job["ready"]["workspace"] == {"one": 1, "two": 2, "three": 5}
    assert (job["ready"]["attempts"], job["ready"]["errors"]) == (1, [])
    for label in ("processing", "stopping"):
        assert job[label]["state"] == "COMPLETE"
        assert job[label]["workspace"] == {"input": 10, "one": 11, "two": 22, "three": 25}
        assert [error["type"] for error in job[label]["errors"]] == ["WorkerLost"]
    # Finished jobs stay as 3.3.0 left them; a job for later waits.
    assert (job["complete"]["state"], job["complete"]["next_task"]) == ("COMPLETE", "")
    assert job["failed"]["state"] == "FAILED" and job["failed"]["priority"] == 5
    assert job["failed"]["errors"] == []
    assert (job["later"]["state"], job["later"]["attempts"]) == ("NEW", 0)
    # Old failed jobs can be retried and old finished jobs deleted with the new commands.
    retried = ok(manage(db, "retry_job", made["failed"]))
    assert "queued again from tests.jobs.raise_error" in retried
    ok(manage(db, "worker", "other", "--drain"))
    rows = {row["id"]: row for row in json.loads(shell(db, DUMP))}
    assert rows[made["failed"]]["state"] == "FAILED"
    assert rows[made["failed"]]["errors"][0]["type"] == "ValueError"
    assert ok(manage(db, "delete_old_jobs", "--hours", "0")) == "Deleted 6 job(s)\n"


def test_the_model_retry_and_schedule_suites_pass_with_use_tz_false():
    """Runs those suites again in a child pytest with ``USE_TZ = False`` on this backend."""
    env = dict(os.environ)
    env["DBQ_TEST_USE_TZ"] = "0"
    env["DBQ_TEST_DB_SUFFIX"] = env.get("DBQ_TEST_DB_SUFFIX", "") + "_notz"
    files = [
        "tests/databases/test_models.py",
        "tests/databases/test_retries.py",
        "tests/processes/test_retries.py",
        "tests/databases/test_schedule.py",
        "tests/processes/test_schedule.py",
    ]
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


@pytest.mark.django_db(transaction=True)
def test_the_migration_goes_back_and_forth_with_finished_jobs_sharing_a_key(scratch_database):
    db = scratch_database
    ok(manage(db, "migrate"))
    create = (
        "from django_dbq.models import Job; "
        "[Job.objects.create(name='noop', unique_key='k', state=s) "
        "for s in ('COMPLETE', 'FAILED', 'NEW')]"
    )
    shell(db, create)
    ok(manage(db, "migrate", "django_dbq", "0008"))
    # Back on the old rule: the finished jobs let their key go, the waiting one keeps it.
    keys = (
        "from django_dbq.models import Job; "
        "print(sorted(Job.objects.values_list('state', 'unique_key')))"
    )
    assert shell(db, keys).strip() == ("[('COMPLETE', None), ('FAILED', None), ('NEW', 'k')]")
    ok(manage(db, "migrate"))
    ok(manage(db, "makemigrations", "django_dbq", "--check", "--dry-run"))
    shell(db, create.replace(", 'NEW'", ""))
    check = (
        "from django_dbq.models import Job; from django_dbq.exceptions import DuplicateJob\n"
        "try:\n    Job.objects.create(name='noop', unique_key='k')\n"
        "except DuplicateJob as error:\n    print('duplicate of', error.existing_job.state)"
    )
    assert shell(db, check).strip() == "duplicate of NEW"
    names = (
        "from django.db import connection\n"
        "with connection.cursor() as c:\n"
        "    print(sorted(connection.introspection.get_constraints(c, 'django_dbq_job')))"
    )
    listed = shell(db, names)
    for name in ("dbq_job_runnable", "dbq_job_leased", "dbq_job_active_unique_key"):
        assert f"'{name}'" in listed
