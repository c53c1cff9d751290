"""The one rule a workflow's graph must follow: no cycle, or none of its jobs would run."""

from __future__ import annotations

from typing import Any


class CycleError(ValueError):
    """The dependencies given form a cycle: no job of it could ever run."""


def check_acyclic(pending: list[tuple[Any, list[Any], str]]) -> None:
    """Refuse a cycle among the jobs about to be enqueued (:class:`CycleError`)."""
    parents_of = {id(job): [id(parent) for parent in parents] for job, parents, _ in pending}
    done: set[int] = set()
    for start in parents_of:
        path, stack = set(), [(start, iter(parents_of[start]))]
        path.add(start)
        while stack:
            node, parents = stack[-1]
            parent = next((p for p in parents if p in parents_of and p not in done), None)
            if parent is None:
                stack.pop()
                path.discard(node)
                done.add(node)
            elif parent in path:
                raise CycleError("These jobs depend on each other in a cycle; none would run.")
            else:
                path.add(parent)
                stack.append((parent, iter(parents_of[parent])))
