"""The admin's queue overview: per queue, jobs in each state, due jobs, the oldest wait.

It also shows which queues are paused (with paused queues that have no jobs), and,
to users who may change jobs, a Pause or Resume button per queue; and each queue's
concurrency limit (``DBQ_QUEUES``) beside the jobs it has running.

:func:`queue_overview` is usable from code too (see docs/admin.md).
"""

from __future__ import annotations

import datetime
from urllib.parse import urlencode

from django.contrib import messages
from django.core.exceptions import PermissionDenied
from django.db.models import Count, Min, Q, QuerySet
from django.db.models.functions import Coalesce
from django.http import (
    HttpRequest,
    HttpResponse,
    HttpResponseBadRequest,
    HttpResponseNotAllowed,
    HttpResponseRedirect,
)
from django.template.response import TemplateResponse
from django.urls import path, reverse
from django.utils import timezone
from django.utils.text import capfirst
from django.utils.timesince import timesince
from django.utils.translation import ngettext

from .. import conf, queues
from ..models import Job, JobQuerySet
from . import activity, charts

PAUSE_ACTIONS = {"pause": queues.pause, "resume": queues.resume}
MINUTE = datetime.timedelta(minutes=1)


def age_text(then: datetime.datetime, now: datetime.datetime, depth: int = 1) -> str:
    """How long before ``now`` ``then`` was: in seconds under a minute, else as ``timesince``."""
    seconds = int((now - then).total_seconds())
    if seconds < 60:
        return ngettext("%(count)d\xa0second", "%(count)d\xa0seconds", max(seconds, 0)) % {
            "count": max(seconds, 0)
        }
    return timesince(then, now, depth=depth)


def queue_overview(queryset: QuerySet, now: datetime.datetime | None = None) -> list[dict]:
    """Per queue: a count per state, due jobs, the oldest due job, jobs finished in the last hour.

    One aggregate query, grouped by queue. A job is *due* when it is NEW or READY and
    its ``run_after`` (if any) has come; it has been waiting since ``run_after`` or,
    without one, since it was created.
    """
    now = now or timezone.now()
    due = Q(state__in=JobQuerySet.RUNNABLE) & (Q(run_after__isnull=True) | Q(run_after__lte=now))
    finished = Q(state__in=JobQuerySet.FINISHED, finished_at__gte=now - datetime.timedelta(hours=1))
    per_state = {state: Count("pk", filter=Q(state=state)) for state in Job.STATES.values}
    rows = (
        queryset.order_by()
        .values("queue_name")
        .annotate(
            total=Count("pk"),
            due=Count("pk", filter=due),
            oldest_due=Min(Coalesce("run_after", "created"), filter=due),
            finished_last_hour=Count("pk", filter=finished),
            **per_state,
        )
        .order_by("queue_name")
    )
    overview = []
    for row in rows:
        oldest = row["oldest_due"]
        overview.append(
            {
                "queue_name": row["queue_name"],
                "total": row["total"],
                "states": {state: row[state] for state in Job.STATES.values},
                "due": row["due"],
                "oldest_due": oldest,
                "oldest_wait_seconds": max(0.0, (now - oldest).total_seconds()) if oldest else None,
                "finished_last_hour": row["finished_last_hour"],
            }
        )
    return overview


def empty_row(queue_name: str) -> dict:
    """A :func:`queue_overview` row for a queue without jobs (shown when it is paused)."""
    return {
        "queue_name": queue_name,
        "total": 0,
        "states": dict.fromkeys(Job.STATES.values, 0),
        "due": 0,
        "oldest_due": None,
        "oldest_wait_seconds": None,
        "finished_last_hour": 0,
    }


def activity_context(jobs: QuerySet, now: datetime.datetime) -> dict:
    """The overview's charts: per queue active in the last day, then the busiest job names."""
    hourly = activity.throughput(jobs, now, activity.HOUR, MINUTE)
    daily = activity.throughput(jobs, now, activity.DAY, activity.HOUR)
    waits = activity.wait_percentiles(jobs, now)
    per_queue = [
        {
            "name": name,
            "hour": charts.throughput_chart(
                hourly.get(name) or activity.empty_series(now, activity.HOUR, MINUTE),
                f"Queue {name}: jobs per minute, last hour",
                "%H:%M",
            ),
            "day": charts.throughput_chart(
                series, f"Queue {name}: jobs per hour, last day", "%a %H:%M"
            ),
            "wait": charts.wait_chart(waits[name], f"Queue {name}: wait before start")
            if name in waits
            else None,
        }
        for name, series in daily.items()
    ]
    busiest = activity.busiest(jobs, now)
    chart = charts.busiest_chart(busiest, "Most run time by job name, last day")
    return {"activity": per_queue, "busiest": chart if busiest else None}


class QueueOverviewMixin:
    """The ``overview/`` page of :class:`~django_dbq.admin.JobAdmin`, one row per queue."""

    def get_urls(self):
        prefix = f"{self.opts.app_label}_{self.opts.model_name}"
        view = self.admin_site.admin_view(self.overview_view)
        pause = self.admin_site.admin_view(self.pause_queue_view)
        return [
            path("overview/", view, name=f"{prefix}_overview"),
            path("overview/pause/", pause, name=f"{prefix}_pause_queue"),
            *super().get_urls(),
        ]

    def _overview_url(self, suffix: str = "overview") -> str:
        name = f"{self.opts.app_label}_{self.opts.model_name}_{suffix}"
        return reverse(f"{self.admin_site.name}:{name}")

    def pause_queue_view(self, request: HttpRequest) -> HttpResponse:
        """POST ``queue`` and ``action`` (``pause`` or ``resume``); needs change permission."""
        if request.method != "POST":
            return HttpResponseNotAllowed(["POST"])
        if not self.has_change_permission(request):
            raise PermissionDenied
        change = PAUSE_ACTIONS.get(request.POST.get("action", ""))
        if change is None:
            return HttpResponseBadRequest("action must be pause or resume")
        name = request.POST.get("queue", "")
        try:
            changed = change(name, using=self.get_queryset(request).db)
        except ValueError as error:
            self.message_user(request, str(error), messages.ERROR)
        else:
            done = "paused" if change is queues.pause else "resumed"
            text = f"Queue “{name}” {done}." if changed else f"Queue “{name}” was {done} already."
            self.message_user(request, text, messages.SUCCESS if changed else messages.INFO)
        return HttpResponseRedirect(self._overview_url())

    def overview_view(self, request: HttpRequest) -> HttpResponse:
        if not self.has_view_permission(request):
            raise PermissionDenied
        refresh = request.GET.get("refresh")
        if refresh is not None and not (
            refresh.isascii() and refresh.isdigit() and 5 <= int(refresh) <= 3600
        ):
            return HttpResponseBadRequest("refresh must be a whole number of seconds, 5 to 3600.")
        now = timezone.now()
        changelist = self._overview_url("changelist")

        def link(**filters: str) -> str:
            return f"{changelist}?{urlencode(filters)}"

        states = Job.STATES.choices
        jobs = self.get_queryset(request)
        rows = queue_overview(jobs, now)
        paused = queues.paused_since(using=jobs.db)
        known = {row["queue_name"] for row in rows}
        rows = sorted(
            [*rows, *(empty_row(name) for name in paused if name not in known)],
            key=lambda row: row["queue_name"],
        )
        limits, options = conf.queue_limits(), conf.get("DBQ_QUEUES")
        for row in rows:
            row["paused_at"] = paused.get(row["queue_name"])
            row["limit"] = limits.get(row["queue_name"])
            row["rate"] = options.get(row["queue_name"], {}).get("rate")
            row["running"] = sum(row["states"][state] for state in JobQuerySet.ACTIVE)
            queue = {"queue_name": row["queue_name"]}
            row["link"] = link(**queue)
            row["cells"] = [
                (row["states"][state], link(**queue, state__exact=state)) for state, _ in states
            ]
            if row["oldest_due"]:
                row["oldest_age"] = age_text(row["oldest_due"], now, depth=2)
        totals = [sum(row["states"][state] for row in rows) for state, _ in states]
        context = {
            **self.admin_site.each_context(request),
            "title": "Queue overview",
            "opts": self.opts,
            "app_label": self.opts.app_label,
            "changelist_url": changelist,
            "states": [label for _, label in states],
            "rows": rows,
            "totals": totals,
            "total_due": sum(row["due"] for row in rows),
            "total_finished_last_hour": sum(row["finished_last_hour"] for row in rows),
            "now": now,
            "can_pause": self.has_change_permission(request),
            "paused_count": len(paused),
            "pause_url": self._overview_url("pause_queue"),
            "verbose_name_plural": capfirst(self.opts.verbose_name_plural),
            "refresh": refresh,
            **activity_context(jobs, now),
        }
        request.current_app = self.admin_site.name
        return TemplateResponse(request, "admin/django_dbq/job/overview.html", context)
