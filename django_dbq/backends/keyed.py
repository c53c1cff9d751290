"""Claiming jobs that carry a concurrency key: lock the key's row, count, claim one.

A keyed job (``Job.concurrency_key``, see :mod:`django_dbq.keys`) is never taken by
the one-statement claim (its condition says ``concurrency_key IS NULL``). Its claim
is in two parts:

1. Without any lock, read a few runnable keyed jobs of the worker's queues, in claim
   order, whose key looks to have room (fewer held jobs than the job's limit).
2. For a candidate, in one short transaction: lock the key's row (making it if it is
   missing), count the key's held jobs (``PROCESSING``/``STOPPING``) and, if there is
   still room, claim that one job (if no other worker took it meanwhile).

Claims of one key thus queue up on its row for a moment and never see the same free
slot; the writes that end, release or rescue a job only lower the count. A
transaction locks one key row at most: two claims can never wait on each other's
keys. Within a limited queue's claim (:mod:`.limits`) the queue's row is locked first.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence

from django.db import models, transaction

from ..states import ACTIVE
from .claims import CLAIM_ORDER, DUE, Claim, ClaimPlan
from .limits import insert_ignore_sql
from .rows import instances_from_rows

# How many candidates one look reads: enough to get past a few full keys.
CANDIDATES = 20


@dataclasses.dataclass(frozen=True)
class KeyedPlan:
    """The statements of the keyed claims of one list of queues, built once and reused."""

    queue_names: tuple[str, ...]
    candidates: str  # (id, key, limit) of runnable keyed jobs whose key has room, in claim order
    lock: str  # locks a key's row until the transaction ends (parameter: the key)
    create: str  # makes a key's row if it is missing
    held: str  # counts a key's jobs held by workers
    claim: ClaimPlan  # claims one runnable job by id


def build_keyed_plan(
    connection,
    model: type[models.Model],
    key_model: type[models.Model],
    queue_names: tuple[str, ...],
    runnable_keyed: str,
    lock_sql: str,
    claim_by_id: ClaimPlan,
) -> KeyedPlan:
    """``runnable_keyed``: the engine's condition of runnable keyed jobs of the queues,
    with one ``%s`` per queue; ``lock_sql`` its way to lock a row ({table}, {name})."""
    quote = connection.ops.quote_name
    meta = model._meta
    jobs = quote(meta.db_table)
    column = {name: quote(meta.get_field(name).column) for name in ("concurrency_key", "state")}
    key, limit = column["concurrency_key"], quote(meta.get_field("concurrency_limit").column)
    states = ", ".join(f"'{state.value}'" for state in ACTIVE)
    held_by_key = f"{column['state']} IN ({states}) AND {key} IS NOT NULL"
    candidates = (
        f"SELECT j.{quote(meta.pk.column)}, j.{key}, j.{limit} FROM {jobs} j "
        f"WHERE {runnable_keyed} AND {DUE} AND j.{limit} > "
        f"(SELECT COUNT(*) FROM {jobs} h WHERE h.{key} = j.{key} AND h.{held_by_key}) "
        f"{CLAIM_ORDER} LIMIT {CANDIDATES}"
    )
    key_table, key_name = quote(key_model._meta.db_table), quote(key_model._meta.pk.column)
    return KeyedPlan(
        queue_names=queue_names,
        candidates=candidates,
        lock=lock_sql.format(table=key_table, name=key_name),
        create=insert_ignore_sql(connection, key_model),
        held=f"SELECT COUNT(*) FROM {jobs} WHERE {key} = %s AND {held_by_key}",
        claim=claim_by_id,
    )


def plan_for(
    backend,
    connection,
    model: type[models.Model],
    key_model: type[models.Model],
    queue_names: Sequence[str],
) -> KeyedPlan:
    """The keyed claims of ``queue_names`` on ``backend``, built on first use and cached."""
    cache_key = (model, key_model, tuple(queue_names))
    plan = backend.keyed_plans.get(cache_key)
    if plan is None:
        by_id = backend.build_claim_by_id_plan(connection, model)
        runnable = backend.keyed_runnable_in(len(cache_key[2]))
        plan = build_keyed_plan(
            connection, model, key_model, cache_key[2], runnable, backend.queue_lock_sql, by_id
        )
        backend.keyed_plans[cache_key] = plan
    return plan


def claim_one(
    backend, connection, plan: KeyedPlan, claim: Claim, *, one_key: bool = False
) -> list[models.Model]:
    """Claim one keyed job whose key has room.

    ``one_key``: try the first candidate's key only (inside a limited queue's claim,
    whose transaction must not lock a second key row).
    """
    tried = set()
    for row in candidates(connection, plan, claim):
        if row[1] in tried:
            continue
        tried.add(row[1])
        jobs = claim_candidate(backend, connection, plan, claim, row)
        if jobs or one_key:
            return jobs
    return []


def candidates(connection, plan: KeyedPlan, claim: Claim) -> list[tuple]:
    """(id, key, limit) of runnable keyed jobs whose key looked to have room, read unlocked."""
    with connection.cursor() as cursor:
        cursor.execute(plan.candidates, [*plan.queue_names, claim.prepared_now])
        return cursor.fetchall()


def claim_candidate(backend, connection, plan: KeyedPlan, claim: Claim, row: tuple) -> list:
    """Claim the job of candidate ``row`` if its key still has room, under the key's lock."""
    outer = connection.in_atomic_block
    rows = _claim_under_lock(backend, connection, plan, claim, row, make_row=outer)
    if rows is None:
        # The key's first claim: its row is made on its own first. Two claims making it
        # inside their transactions can deadlock each other on InnoDB.
        with connection.cursor() as cursor:
            cursor.execute(plan.create, [row[1]])
        rows = _claim_under_lock(backend, connection, plan, claim, row, make_row=False)
    if not rows:
        return []  # no room, taken, or the row deleted again at once: the next look retries
    jobs = instances_from_rows(plan.claim.model, connection, plan.claim.fields, rows)
    backend.after_claim(claim, jobs)
    return jobs


def _claim_under_lock(
    backend, connection, plan: KeyedPlan, claim: Claim, row: tuple, *, make_row: bool
) -> list[tuple] | None:
    """The claimed rows (none if the key is full); None if the key has no row to lock."""
    job_id, key, limit = row
    outer = connection.in_atomic_block
    with transaction.atomic(using=connection.alias, savepoint=False):
        with connection.cursor() as cursor:
            if not outer:
                backend.begin_limited_claim(connection, cursor)
            if not backend.lock_row(cursor, plan.lock, key):
                if not make_row:
                    return None
                cursor.execute(plan.create, [key])
                if not backend.lock_row(cursor, plan.lock, key):
                    return []
            cursor.execute(plan.held, [key])
            if cursor.fetchone()[0] >= limit:
                return []
        return backend.claim_rows(connection, plan.claim, claim, 1, [job_id])
