"""Unique keys held only while a job waits or runs; exact names and keys on MariaDB/MySQL.

A job keeps its ``unique_key`` for good (it used to be cleared when the job finished);
uniqueness of ``(name, unique_key)`` is enforced over waiting and running rows only
(states NEW, READY, PROCESSING, STOPPING), so a retried job takes its key back and a
job created finished never holds one:
- PostgreSQL and SQLite: a partial unique index.
- MariaDB/MySQL (no partial indexes): a generated column holds the key while the job
  is active (NULL otherwise), with a unique index over ``(name, that column)``.

MariaDB/MySQL compare text with the column's collation, which is case- and accent-
insensitive and ignores trailing spaces by default: a worker of queue ``emails``
claimed jobs of ``'Emails '``, and key ``site-1`` collided with ``Site-1``. The job
name, state, queue name and unique key columns, and the generated columns built from
them, get the binary collation of their character set (a NO PAD one where the server
has it), so they compare exactly, as on PostgreSQL and SQLite.

Django does not know these objects. Dropping the old plain unique constraint makes
Django rebuild the job table on SQLite, which drops the raw indexes of migration 0008:
they are created again here. A later migration that rebuilds the table on SQLite must
create them and ``dbq_job_active_unique_key`` again; one that alters those four
columns on MariaDB/MySQL must keep their binary collation.

Going back to 0008 clears the key of finished jobs (the old rule) before the old
constraint returns.
"""

from django.db import migrations

ACTIVE = "state IN ('NEW', 'READY', 'PROCESSING', 'STOPPING')"
FINISHED = "state NOT IN ('NEW', 'READY', 'PROCESSING', 'STOPPING')"

PARTIAL_UNIQUE = (
    "CREATE UNIQUE INDEX dbq_job_active_unique_key ON django_dbq_job (name, unique_key) "
    f"WHERE {ACTIVE} AND unique_key IS NOT NULL",
    "DROP INDEX IF EXISTS dbq_job_active_unique_key",
)
# Migration 0008's claim indexes, as it created them on SQLite.
SQLITE_CLAIM_INDEXES = [
    "CREATE INDEX IF NOT EXISTS dbq_job_runnable ON django_dbq_job "
    "(queue_name, priority DESC, created) WHERE state IN ('NEW', 'READY')",
    "CREATE INDEX IF NOT EXISTS dbq_job_leased ON django_dbq_job (lease_expires_at) "
    "WHERE state IN ('PROCESSING', 'STOPPING')",
]
# The compared text columns on MariaDB/MySQL: (column, type, nullability).
MYSQL_COLUMNS = [
    ("name", "varchar(255)", "NOT NULL"),
    ("state", "varchar(20)", "NOT NULL"),
    ("queue_name", "varchar(100)", "NOT NULL"),
    ("unique_key", "varchar(200)", "NULL"),
]
RUNNABLE_QUEUE = "AS (CASE WHEN state IN ('NEW', 'READY') THEN queue_name END) VIRTUAL"
ACTIVE_KEY = f"AS (CASE WHEN {ACTIVE} THEN unique_key END) VIRTUAL"


def _mysql_binary_collation(cursor) -> tuple[str, str]:
    """The job table's character set and its exact (binary, preferably NO PAD) collation."""
    cursor.execute(
        "SELECT CHARACTER_SET_NAME FROM information_schema.COLUMNS WHERE "
        "TABLE_SCHEMA = DATABASE() AND TABLE_NAME = 'django_dbq_job' AND COLUMN_NAME = 'name'"
    )
    charset = cursor.fetchone()[0]
    candidates = [f"{charset}_nopad_bin", f"{charset}_0900_bin", f"{charset}_bin"]
    cursor.execute(
        "SELECT COLLATION_NAME FROM information_schema.COLLATIONS WHERE COLLATION_NAME IN "
        "(%s, %s, %s)",
        candidates,
    )
    available = {row[0] for row in cursor.fetchall()}
    return charset, next(name for name in candidates if name in available)


def _mysql_forwards(schema_editor) -> None:
    with schema_editor.connection.cursor() as cursor:
        cursor.execute(
            "SELECT 1 FROM information_schema.COLUMNS WHERE TABLE_SCHEMA = DATABASE() AND "
            "TABLE_NAME = 'django_dbq_job' AND COLUMN_NAME = 'dbq_active_key'"
        )
        if cursor.fetchone():
            return  # a run stopped after the ALTER below (one statement: all of it or none)
        charset, collation = _mysql_binary_collation(cursor)
    exact = f"CHARACTER SET {charset} COLLATE {collation}"
    changes = [f"MODIFY {column} {kind} {exact} {null}" for column, kind, null in MYSQL_COLUMNS]
    changes += [
        f"MODIFY dbq_runnable_queue varchar(100) {exact} {RUNNABLE_QUEUE}",
        f"ADD COLUMN dbq_active_key varchar(200) {exact} {ACTIVE_KEY}",
        "ADD UNIQUE INDEX dbq_job_active_unique_key (name, dbq_active_key)",
    ]
    # One statement: the table is copied once.
    schema_editor.execute(f"ALTER TABLE django_dbq_job {', '.join(changes)}")


def _mysql_backwards(schema_editor) -> None:
    # Without a collation, a column takes the table's default again.
    changes = [f"MODIFY {column} {kind} {null}" for column, kind, null in MYSQL_COLUMNS]
    changes += [
        f"MODIFY dbq_runnable_queue varchar(100) {RUNNABLE_QUEUE}",
        "DROP INDEX dbq_job_active_unique_key",
        "DROP COLUMN dbq_active_key",
    ]
    schema_editor.execute(f"ALTER TABLE django_dbq_job {', '.join(changes)}")


def guard_active_keys(apps, schema_editor):
    """Before the old constraint goes: the new guard (on SQLite it comes after the rebuild)."""
    vendor = schema_editor.connection.vendor
    if vendor == "postgresql":
        schema_editor.execute(PARTIAL_UNIQUE[0])
    elif vendor == "mysql":
        _mysql_forwards(schema_editor)


def unguard_active_keys(apps, schema_editor):
    vendor = schema_editor.connection.vendor
    if vendor == "postgresql":
        schema_editor.execute(PARTIAL_UNIQUE[1])
    elif vendor == "mysql":
        _mysql_backwards(schema_editor)
    elif vendor == "sqlite":
        # Adding the old constraint back rebuilt the table.
        for create in SQLITE_CLAIM_INDEXES:
            schema_editor.execute(create)


def rebuild_sqlite_indexes(apps, schema_editor):
    """After Django's rebuild of the table on SQLite: 0008's indexes and the new guard."""
    if schema_editor.connection.vendor == "sqlite":
        for create in SQLITE_CLAIM_INDEXES:
            schema_editor.execute(create)
        schema_editor.execute(PARTIAL_UNIQUE[0])


def release_finished_keys(apps, schema_editor):
    """Back to the old rule before its constraint returns: finished jobs hold no key."""
    if schema_editor.connection.vendor == "sqlite":
        schema_editor.execute(PARTIAL_UNIQUE[1])
    schema_editor.execute(
        f"UPDATE django_dbq_job SET unique_key = NULL WHERE {FINISHED} AND unique_key IS NOT NULL"
    )


class Migration(migrations.Migration):
    dependencies = [("django_dbq", "0008_claim_indexes_and_notify")]

    # The whole migration is one transaction on PostgreSQL and SQLite; MariaDB/MySQL
    # cannot run DDL in one, so the steps must not ask for a transaction there.
    operations = [
        migrations.RunPython(guard_active_keys, unguard_active_keys, atomic=False),
        migrations.RemoveConstraint(model_name="job", name="dbq_job_unique_key"),
        migrations.RunPython(rebuild_sqlite_indexes, release_finished_keys, atomic=False),
    ]
