"""What the engine writes with: the fenced UPDATE, the values of a release and of an end."""

from __future__ import annotations

import contextlib
import json
from collections.abc import Callable, Iterator
from typing import Any

from django.db import IntegrityError, connections, router, transaction
from django.utils import timezone

from .. import backends
from ..exceptions import DuplicateJob, InvalidWorkspace
from ..states import HOLDING_KEY, State
from . import dependencies

Persist = Callable[[Callable[[], bool]], bool]

# Handing a job back: waiting at its next step, its claim let go. States are written as
# plain strings: a driver adapts a str subclass (the enum) more slowly, on every write.
RELEASED = {
    "state": State.READY.value,
    "lease_token": None,
    "lease_expires_at": None,
    "worker_id": "",
}


def once(write: Callable[[], bool]) -> bool:
    """The ``persist`` that tries a write once."""
    return write()


def finished(state: str) -> dict[str, Any]:
    """The values that end a job: its final state, its claim let go (and so its unique key)."""
    return {
        "state": State(state).value,
        "finished_at": timezone.now(),
        "lease_token": None,
        "lease_expires_at": None,
    }


def check_workspace(workspace: Any) -> dict:
    """``workspace`` as stored ({} for None); :class:`InvalidWorkspace` unless a JSON dict."""
    if workspace is None:
        return {}
    if not isinstance(workspace, dict):
        raise InvalidWorkspace(f"A job's workspace must be a dict, not {type(workspace).__name__}.")
    try:
        json.dumps(workspace, allow_nan=False)
    except (TypeError, ValueError) as error:
        raise InvalidWorkspace(f"A job's workspace must be JSON-serialisable: {error}") from None
    return workspace


def jobs_of(job: Any, using: str | None = None):
    """The job table's manager on ``using`` (or where ``job`` came from)."""
    return job._meta.default_manager.using(using or job._state.db or router.db_for_write(job))


@contextlib.contextmanager
def duplicate_job_raised(job: Any, using: str) -> Iterator[None]:
    """Write ``job`` in a savepoint; a unique-key conflict raises :class:`DuplicateJob`.

    The savepoint keeps the caller's transaction usable after a duplicate. The job
    reported is the waiting or running one holding the key (finished jobs keep theirs).
    """
    try:
        with transaction.atomic(using=using):
            yield
    except IntegrityError:
        existing = (
            jobs_of(job, using)
            .filter(name=job.name, unique_key=job.unique_key, state__in=HOLDING_KEY)
            .exclude(pk=job.pk)
            .first()
        )
        raise DuplicateJob(
            f"A {job.name!r} job with unique key {job.unique_key!r} is already waiting or "
            f"running{f' (job {existing.pk})' if existing else ''}.",
            existing_job=existing,
        ) from None


def fenced_update(job: Any, *, unless_cancelled: bool = False, **values: Any) -> bool:
    """Write ``values`` to ``job``'s row only while the claim it carries is current.

    Returns False (writing nothing) once the job was rescued and claimed again, and,
    with ``unless_cancelled``, once someone asked to cancel it. An instance with no
    claim to fence on never writes: no write matches a NULL token.

    A write that ends a job with dependents or of a workflow follows the end through
    in the same transaction (:mod:`.dependencies`). The instance may not know of
    dependents added while it ran: the write of an end then also requires that the
    row has none, and is made again the other way if it has.
    """
    token = job.fence_token
    if token is None:
        return False
    ending = values.get("state") in dependencies.ENDED
    follow = ending and dependencies.affects_others(job)
    values["modified"] = timezone.now()
    meta = job._meta
    using = job._state.db or router.db_for_write(type(job))
    connection = connections[using]
    fields = [meta.get_field(name) for name in values]
    assignments = ", ".join(f"{connection.ops.quote_name(f.column)} = %s" for f in fields)
    params = [f.get_db_prep_save(values[f.name], connection) for f in fields]
    sql = (
        f"UPDATE {connection.ops.quote_name(meta.db_table)} SET {assignments} "
        "WHERE id = %s AND lease_token = %s"
    )
    if unless_cancelled:
        sql += " AND cancel_requested = %s"
    if ending and not job.dependents:
        sql += f" AND {connection.ops.quote_name('dependents')} IS NULL"
    pk = meta.pk.get_db_prep_value(job.pk, connection)
    prepared_token = meta.get_field("lease_token").get_db_prep_value(token, connection)
    params = [*params, pk, prepared_token, *([False] if unless_cancelled else [])]
    backend = backends.for_connection(connection)
    notices = []
    in_one = None  # (applied, workflows going on) when the engine followed a completion through
    if follow and job.dependents and values["state"] == State.COMPLETE.value:
        now = meta.get_field("modified").get_db_prep_value(values["modified"], connection)
        in_one = backend.complete_with_dependents(connection, sql, params, type(job), now)
    if in_one is not None:
        applied, going_on = in_one
        if applied and job.workflow_id is not None and job.workflow_id not in going_on:
            notices = dependencies.close_workflow_of(job, using)
    else:
        with transaction.atomic(using=using) if follow else contextlib.nullcontext():
            if follow:
                backend.relax_commit(connection)
            # The engine may commit this bookkeeping faster (PostgreSQL: no WAL flush wait).
            applied = backend.execute_update(connection, sql, params) == 1
            if applied and follow:
                notices = dependencies.job_ended(job, values["state"], using)
    if not applied and ending and not job.dependents:
        held = jobs_of(job, using).filter(pk=job.pk, lease_token=token)
        job.dependents = held.values_list("dependents", flat=True).first()
        if job.dependents:  # gained dependents while it ran: end it again, following through
            del values["modified"]
            return fenced_update(job, unless_cancelled=unless_cancelled, **values)
    if applied:
        for name, value in values.items():
            setattr(job, name, value)
        dependencies.send(notices)
    return applied
