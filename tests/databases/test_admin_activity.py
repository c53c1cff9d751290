"""The overview's activity charts: their numbers are the rows' (test client, real database)."""

import datetime
import itertools
import re

import pytest
from django.urls import reverse
from django.utils import timezone

from django_dbq.admin import activity
from django_dbq.models import Job

pytestmark = [pytest.mark.database, pytest.mark.django_db]

OVERVIEW = "admin:django_dbq_job_overview"


def ended(
    state: str,
    ago: datetime.timedelta,
    queue: str = "mail",
    *,
    name="noop",
    ran=None,
    waited=None,
    now,
):
    """A job that ended ``ago`` before ``now``, having run ``ran`` after waiting ``waited``."""
    finished = now - ago
    started = finished - (ran or datetime.timedelta(seconds=1))
    created = started - (waited or datetime.timedelta(0))
    job = Job.objects.create(name=name, queue_name=queue)
    Job.objects.filter(pk=job.pk).update(
        state=state, created=created, started_at=started, finished_at=finished
    )
    return job


def bars(page: str, queue: str, chart: int) -> list[tuple[int, int]]:
    """(completed, failed) of each bar of ``queue``'s ``chart``-th chart (0: hour, 1: day)."""
    section = page.split(f'dbq-activity" data-queue="{queue}"', 1)[1].split(
        'class="module dbq-activity"'
    )[0]
    svg = section.split("<svg")[chart + 1].split("</svg>")[0]
    return [
        (int(c), int(f)) for c, f in re.findall(r'data-completed="(\d+)" data-failed="(\d+)"', svg)
    ]


def test_the_throughput_buckets_count_the_rows_that_ended_in_them():
    now = timezone.now().replace(second=30)
    minute = datetime.timedelta(minutes=1)
    for _ in range(3):
        ended("COMPLETE", minute * 5, now=now)
    ended("FAILED", minute * 5, now=now)
    ended("COMPLETE", datetime.timedelta(hours=3), now=now)
    ended("CANCELLED", minute * 5, now=now)  # neither completed nor failed
    ended("COMPLETE", datetime.timedelta(days=2), now=now)  # too old for either chart
    hour = activity.throughput(Job.objects.all(), now, activity.HOUR, minute)["mail"]
    assert len(hour.starts) == 60
    five_ago = hour.starts.index(hour.starts[-1] - minute * 5)
    assert (hour.completed[five_ago], hour.failed[five_ago]) == (3, 1)
    assert (sum(hour.completed), sum(hour.failed)) == (3, 1)
    day = activity.throughput(Job.objects.all(), now, activity.DAY, activity.HOUR)["mail"]
    assert len(day.starts) == 24
    assert (sum(day.completed), sum(day.failed)) == (4, 1)
    assert day.completed[-4] == 1  # three hours ago


def test_wait_percentiles_and_the_busiest_names_come_from_the_rows():
    now = timezone.now()
    for seconds in range(1, 11):  # waits of 1..10 s
        ended(
            "COMPLETE",
            datetime.timedelta(minutes=10),
            "default",
            waited=datetime.timedelta(seconds=seconds),
            now=now,
        )
    assert activity.wait_percentiles(Job.objects.all(), now)["default"] == {
        50: 5.0,
        90: 9.0,
        99: 10.0,
    }
    for state, minutes in (("COMPLETE", 5), ("FAILED", 1)):
        ran = datetime.timedelta(minutes=minutes)
        ended(state, datetime.timedelta(hours=2), name="chain", ran=ran, now=now)
    busiest = activity.busiest(Job.objects.all(), now)
    assert busiest[0] == ("chain", 360.0, 2)
    assert busiest[1] == ("noop", 10.0, 10)


def test_the_overview_draws_each_queues_activity(admin_client):
    now = timezone.now()
    for _ in range(3):
        ended("COMPLETE", datetime.timedelta(minutes=5), now=now)
    ended("FAILED", datetime.timedelta(minutes=5), now=now)
    ended("COMPLETE", datetime.timedelta(hours=3), now=now)
    page = admin_client.get(reverse(OVERVIEW)).content.decode()
    hour, day = bars(page, "mail", 0), bars(page, "mail", 1)
    assert len(hour) == 60 and len(day) == 24
    assert (sum(c for c, _ in hour), sum(f for _, f in hour)) == (3, 1)
    assert (sum(c for c, _ in day), sum(f for _, f in day)) == (4, 1)
    assert 'class="dbq-wait" data-percentile="50"' in page
    assert 'data-name="noop" data-seconds="5.000" data-runs="5"' in page
    assert '<meta http-equiv="refresh"' not in page


def test_the_overview_refreshes_when_asked_and_refuses_a_bad_interval(admin_client):
    page = admin_client.get(reverse(OVERVIEW), {"refresh": "30"}).content.decode()
    assert '<meta http-equiv="refresh" content="30">' in page
    assert "No job completed or failed in the last day." in page
    for bad in ("0", "4", "3601", "soon", "-5", "²"):
        response = admin_client.get(reverse(OVERVIEW), {"refresh": bad})
        assert response.status_code == 400


@pytest.mark.parametrize("day", ["2026-03-29", "2026-10-25"], ids=["spring-forward", "fall-back"])
def test_buckets_keep_their_length_across_a_daylight_saving_change(settings, day):
    from zoneinfo import ZoneInfo

    from django.utils import timezone as tz

    settings.TIME_ZONE = "Europe/Berlin"
    with tz.override(ZoneInfo("Europe/Berlin")):
        now = datetime.datetime.fromisoformat(f"{day}T12:30:00+00:00")
        hours = activity.buckets(now, activity.DAY, activity.HOUR)
        minutes = activity.buckets(now, activity.HOUR, datetime.timedelta(minutes=1))
    assert len(set(hours)) == 24 and len(set(minutes)) == 60
    utc = [start.astimezone(datetime.UTC) for start in hours]
    gaps = {later - earlier for earlier, later in itertools.pairwise(utc)}
    assert gaps == {activity.HOUR}
