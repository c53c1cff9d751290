"""A workflow's graph drawn on the server as SVG: jobs as boxes coloured by state, edges as arrows.

Jobs are laid out in columns by depth (the longest chain of dependencies before them),
so every arrow points right. A workflow too big to read job by job (more than
:data:`MOST_DRAWN` jobs) is drawn one box per column, with its counts by state.
No JavaScript and no front-end build: the page is readable as it is served.
"""

from __future__ import annotations

from collections import Counter, defaultdict
from typing import Any

from django.utils.html import escape

from ..states import State

MOST_DRAWN = 150
BOX_WIDTH, BOX_HEIGHT, COLUMN_GAP, ROW_GAP, MARGIN = 170, 38, 60, 14, 10
# Fill colours by state (readable in the light and dark admin themes alike).
FILLS = {
    State.COMPLETE.value: "#b7e4c7",
    State.FAILED.value: "#f4b6b6",
    State.CANCELLED.value: "#d9d9d9",
    State.PROCESSING.value: "#ffe08a",
    State.STOPPING.value: "#ffe08a",
    State.NEW.value: "#cfe2ff",
    State.READY.value: "#cfe2ff",
    State.WAITING.value: "#ffffff",
}


def depths(jobs: list[dict], edges: list[tuple[Any, Any]]) -> dict[Any, int]:
    """Each job's column: 0 for jobs without dependencies, else one more than its
    deepest dependency (the graph is acyclic: ``enqueue`` refuses cycles)."""
    parents = defaultdict(list)
    for child, parent in edges:
        parents[child].append(parent)
    known = {job["pk"] for job in jobs}
    depth: dict[Any, int] = {}
    for start in known:
        stack = [start]
        while stack:
            node = stack[-1]
            pending = [p for p in parents[node] if p in known and p not in depth]
            if pending:
                stack.extend(pending)
                continue
            stack.pop()
            depth[node] = 1 + max((depth[p] for p in parents[node] if p in depth), default=-1)
    return depth


def draw(jobs: list[dict], edges: list[tuple[Any, Any]], link: Any) -> str:
    """The SVG of the workflow: ``jobs`` (dicts with pk, name, state), ``edges`` (child,
    parent) and ``link(pk)``, the URL of a job's page."""
    depth = depths(jobs, edges)
    columns: dict[int, list[dict]] = defaultdict(list)
    for job in jobs:
        columns[depth[job["pk"]]].append(job)
    if len(jobs) > MOST_DRAWN:
        return _draw_columns(columns, edges, depth)
    place = {}
    for column, members in columns.items():
        for row, job in enumerate(members):
            place[job["pk"]] = (
                MARGIN + column * (BOX_WIDTH + COLUMN_GAP),
                MARGIN + row * (BOX_HEIGHT + ROW_GAP),
            )
    parts = [_arrow(place[parent], place[child]) for child, parent in edges if child in place]
    for job in jobs:
        x, y = place[job["pk"]]
        parts.append(
            f'<a href="{escape(link(job["pk"]))}"><g class="dbq-node" data-state="{job["state"]}">'
            f"<title>{escape(job['name'])} {job['pk']} ({job['state']})</title>"
            f'<rect x="{x}" y="{y}" width="{BOX_WIDTH}" height="{BOX_HEIGHT}" rx="5" '
            f'fill="{FILLS.get(job["state"], "#ffffff")}" stroke="#555"/>'
            f'<text x="{x + 8}" y="{y + 16}" font-size="12">{escape(job["name"][:24])}</text>'
            f'<text x="{x + 8}" y="{y + 31}" font-size="10">{job["state"]} · '
            f"{str(job['pk'])[:8]}</text></g></a>"
        )
    rows = max((len(members) for members in columns.values()), default=0)
    return _svg(len(columns), rows, "".join(parts))


def _draw_columns(columns: dict[int, list[dict]], edges, depth) -> str:
    """One box per column with its counts by state (a workflow too big to draw job by job)."""
    linked = {(depth[parent], depth[child]) for child, parent in edges if parent in depth}
    parts = []
    for left, right in sorted(linked):
        parts.append(_arrow(_column_place(left), _column_place(right)))
    for column, members in sorted(columns.items()):
        x, y = _column_place(column)
        counts = Counter(job["state"] for job in members)
        main = counts.most_common(1)[0][0]
        summary = ", ".join(f"{count} {state}" for state, count in sorted(counts.items()))
        parts.append(
            f'<g class="dbq-node" data-state="{main}"><title>{escape(summary)}</title>'
            f'<rect x="{x}" y="{y}" width="{BOX_WIDTH}" height="{BOX_HEIGHT}" rx="5" '
            f'fill="{FILLS.get(main, "#ffffff")}" stroke="#555"/>'
            f'<text x="{x + 8}" y="{y + 16}" font-size="12">{len(members)} job(s)</text>'
            f'<text x="{x + 8}" y="{y + 31}" font-size="10">{escape(summary[:30])}</text></g>'
        )
    return _svg(len(columns), 1, "".join(parts))


def _column_place(column: int) -> tuple[int, int]:
    return MARGIN + column * (BOX_WIDTH + COLUMN_GAP), MARGIN


def _arrow(start: tuple[int, int], end: tuple[int, int]) -> str:
    x1, y1 = start[0] + BOX_WIDTH, start[1] + BOX_HEIGHT // 2
    x2, y2 = end[0], end[1] + BOX_HEIGHT // 2
    return (
        f'<line class="dbq-edge" x1="{x1}" y1="{y1}" x2="{x2 - 2}" y2="{y2}" '
        'stroke="#555" marker-end="url(#dbq-arrow)"/>'
    )


def _svg(columns: int, rows: int, body: str) -> str:
    width = 2 * MARGIN + max(columns, 1) * (BOX_WIDTH + COLUMN_GAP) - COLUMN_GAP
    height = 2 * MARGIN + max(rows, 1) * (BOX_HEIGHT + ROW_GAP) - ROW_GAP
    return (
        f'<svg xmlns="http://www.w3.org/2000/svg" class="dbq-workflow" width="{width}" '
        f'height="{height}" viewBox="0 0 {width} {height}" role="img">'
        '<defs><marker id="dbq-arrow" viewBox="0 0 10 10" refX="10" refY="5" markerWidth="7" '
        'markerHeight="7" orient="auto"><path d="M0,0 L10,5 L0,10 z" fill="#555"/></marker>'
        f"</defs>{body}</svg>"
    )
