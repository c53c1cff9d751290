"""PostgreSQL: fast-committed writes, and the end of a job that others wait for in one of them.

A completed job's dependents are counted off (and made ``NEW`` when it was the last
job they waited for) by the statement that completes it: data-modifying CTEs, sent
with ``BEGIN``, ``SET LOCAL synchronous_commit`` and ``COMMIT`` in one call, as the
worker's other writes are. The generic path (``engine.dependencies``) makes seven round
trips for the same; a fan-in's parts would spend most of their time there.

The statement does what ``engine.dependencies._settle`` does for a ``COMPLETE`` end;
a child row locked by another parent's end is waited for and read again (PostgreSQL
re-checks the WHERE on the row's new version), so two parents ending at once count
off one after the other.
"""

from __future__ import annotations

from typing import Any

from django.db import models

# The worker's own bookkeeping commits without waiting for the WAL flush: losing the
# last of these writes in a server crash only re-runs those steps (at-least-once
# holds), and every later durable commit flushes them anyway.
FAST_COMMIT_BEGIN = "BEGIN; SET LOCAL synchronous_commit TO OFF"


def completion_sql(connection, update_sql: str, model: type[models.Model]) -> str:
    """``update_sql`` (the fenced completion) followed through to the dependents.

    Parameters: ``update_sql``'s, then the children's ``modified``. The result row:
    whether the completion applied, and the workflows of the children counted off
    that still wait or now run.
    """
    quote = connection.ops.quote_name
    meta = model._meta
    edges_model = meta.get_field("dependencies").related_model
    jobs, edges = quote(meta.db_table), quote(edges_model._meta.db_table)
    return (
        f"WITH ended AS ({update_sql} RETURNING id), "
        f"counted AS (UPDATE {edges} SET satisfied = true "
        "WHERE depends_on_id IN (SELECT id FROM ended) AND NOT satisfied AND NOT blocked "
        "RETURNING job_id), "
        f"children AS (UPDATE {jobs} SET "
        "state = CASE WHEN waiting_for <= 1 THEN 'NEW' ELSE state END, "
        "waiting_for = waiting_for - 1, modified = %s "
        "WHERE id IN (SELECT job_id FROM counted) AND state = 'WAITING' AND waiting_for > 0 "
        "RETURNING workflow_id) "
        "SELECT (SELECT count(*) FROM ended), "
        "ARRAY(SELECT DISTINCT workflow_id FROM children WHERE workflow_id IS NOT NULL)"
    )


def execute_fast(connection, cursor, sql: str, params: Any) -> None:
    """Run ``sql`` in a transaction of its own that commits without the WAL flush wait:
    BEGIN, SET LOCAL, the statement and COMMIT in one round trip."""
    try:
        cursor.execute(f"{FAST_COMMIT_BEGIN}; {sql}; COMMIT", params)
    except Exception:
        if not connection.is_usable() or connection.connection.info.transaction_status:
            connection.close()  # never leave an aborted transaction on the connection
        raise


def run_completion(connection, sql: str, params: list[Any]) -> tuple[bool, set[Any]]:
    """Run :func:`completion_sql` in its own fast-committed transaction."""
    with connection.cursor() as cursor:
        execute_fast(connection, cursor, sql, params)
        while cursor.description is None or not (cursor.statusmessage or "").startswith("SELECT"):
            if not cursor.nextset():
                raise RuntimeError("the completion statement returned no row")
        applied, workflows = cursor.fetchone()
    return applied == 1, set(workflows or ())
