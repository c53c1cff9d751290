"""The overview's charts, drawn on the server as SVG (no JavaScript, no front-end build).

Each bar carries its figures twice: in a ``<title>`` (the tooltip a browser shows) and
in ``data-`` attributes, so the page says the numbers without being looked at.
"""

from __future__ import annotations

import datetime

from django.utils import timezone
from django.utils.html import escape
from django.utils.safestring import SafeString, mark_safe

from .activity import Series

COMPLETED, FAILED, WAIT, BUSY = "#52b788", "#e5383b", "#6c8ebf", "#b08bd9"
WIDTH, HEIGHT, AXIS = 480, 110, 34


def throughput_chart(series: Series, label: str, time_format: str) -> SafeString:
    """Stacked bars: completed (below) and failed (above) per bucket of ``series``."""
    totals = [done + failed for done, failed in zip(series.completed, series.failed, strict=True)]
    top = max(totals, default=0) or 1
    slot = (WIDTH - AXIS) / max(len(totals), 1)
    plot = HEIGHT - 18
    parts = []
    for index, start in enumerate(series.starts):
        done, failed = series.completed[index], series.failed[index]
        x = AXIS + index * slot
        done_height = plot * done / top
        failed_height = plot * failed / top
        when = _local(start).strftime(time_format)
        tip = f"{when}: {done} completed, {failed} failed"
        parts.append(
            f'<g class="dbq-bar" data-start="{escape(start.isoformat())}" '
            f'data-completed="{done}" data-failed="{failed}"><title>{escape(tip)}</title>'
            f'<rect x="{x:.1f}" y="{plot - done_height:.1f}" width="{max(slot - 1, 1):.1f}" '
            f'height="{done_height:.1f}" fill="{COMPLETED}"/>'
            f'<rect x="{x:.1f}" y="{plot - done_height - failed_height:.1f}" '
            f'width="{max(slot - 1, 1):.1f}" height="{failed_height:.1f}" fill="{FAILED}"/></g>'
        )
    first, last = series.starts[0], series.starts[-1]
    labels = (
        f'<text x="{AXIS - 4}" y="10" text-anchor="end">{top}</text>'
        f'<text x="{AXIS - 4}" y="{plot}" text-anchor="end">0</text>'
        f'<text x="{AXIS}" y="{HEIGHT - 4}">{_local(first).strftime(time_format)}</text>'
        f'<text x="{WIDTH}" y="{HEIGHT - 4}" text-anchor="end">'
        f"{_local(last).strftime(time_format)}</text>"
    )
    return _svg(label, "".join(parts) + labels, HEIGHT)


def wait_chart(percentiles: dict[int, float], label: str) -> SafeString:
    """Horizontal bars: the wait before start at each percentile, in seconds."""
    longest = max(percentiles.values(), default=0) or 1
    rows = []
    for index, (percentile, seconds) in enumerate(sorted(percentiles.items())):
        y = 4 + index * 22
        length = (WIDTH - 160) * seconds / longest
        rows.append(
            f'<g class="dbq-wait" data-percentile="{percentile}" data-seconds="{seconds:.3f}">'
            f'<text x="0" y="{y + 13}">p{percentile}</text>'
            f'<rect x="40" y="{y}" width="{max(length, 1):.1f}" height="16" fill="{WAIT}"/>'
            f'<text x="{44 + length:.1f}" y="{y + 13}">{escape(duration_text(seconds))}</text></g>'
        )
    return _svg(label, "".join(rows), 4 + 22 * len(percentiles))


def busiest_chart(rows: list[tuple[str, float, int]], label: str) -> SafeString:
    """Horizontal bars: the job names with the most run time, most first."""
    longest = max((seconds for _, seconds, _ in rows), default=0) or 1
    bars = []
    for index, (name, seconds, runs) in enumerate(rows):
        y = 4 + index * 22
        length = (WIDTH - 260) * seconds / longest
        text = f"{duration_text(seconds)} in {runs} run{'s' if runs != 1 else ''}"
        bars.append(
            f'<g class="dbq-busy" data-name="{escape(name)}" data-seconds="{seconds:.3f}" '
            f'data-runs="{runs}"><text x="0" y="{y + 13}">{escape(name[:28])}</text>'
            f'<rect x="180" y="{y}" width="{max(length, 1):.1f}" height="16" fill="{BUSY}"/>'
            f'<text x="{184 + length:.1f}" y="{y + 13}">{escape(text)}</text></g>'
        )
    return _svg(label, "".join(bars), 4 + 22 * max(len(rows), 1))


def duration_text(seconds: float) -> str:
    """``0.25 s``, ``42 s``, ``3.5 min``, ``2.1 h``."""
    if seconds < 10:
        return f"{seconds:.2f} s"
    if seconds < 120:
        return f"{seconds:.0f} s"
    if seconds < 7200:
        return f"{seconds / 60:.1f} min"
    return f"{seconds / 3600:.1f} h"


def _svg(label: str, body: str, height: float) -> SafeString:
    return mark_safe(
        f'<svg class="dbq-chart" role="img" aria-label="{escape(label)}" width="{WIDTH}" '
        f'height="{height:.0f}" viewBox="0 0 {WIDTH} {height:.0f}" '
        f'font-size="11" font-family="sans-serif" fill="currentColor">{body}</svg>'
    )


def _local(moment: datetime.datetime) -> datetime.datetime:
    return timezone.localtime(moment) if timezone.is_aware(moment) else moment
