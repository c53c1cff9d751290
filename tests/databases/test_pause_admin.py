"""The queue overview's pause state and its Pause/Resume buttons, through Django's test client."""

import re

import pytest
from django.contrib.auth.models import Permission, User
from django.contrib.messages import get_messages
from django.test import Client
from django.urls import reverse

from django_dbq import queues
from django_dbq.models import Job

pytestmark = [pytest.mark.database, pytest.mark.django_db]

OVERVIEW = "admin:django_dbq_job_overview"
PAUSE = "admin:django_dbq_job_pause_queue"


def user_client(client, *codenames):
    user = User.objects.create_user("staff", password="pw", is_staff=True)
    user.user_permissions.set(
        Permission.objects.filter(content_type__app_label="django_dbq", codename__in=codenames)
    )
    client.force_login(user)
    return client


def texts(response):
    return [str(message) for message in get_messages(response.wsgi_request)]


def test_the_overview_shows_paused_queues_with_a_resume_button(admin_client):
    Job.objects.create(name="noop", queue_name="emails")
    Job.objects.create(name="noop", queue_name="reports")
    queues.pause(["emails", "no-jobs-yet"])
    response = admin_client.get(reverse(OVERVIEW))
    html = response.content.decode()
    assert [row["queue_name"] for row in response.context["rows"]] == [
        "emails",
        "no-jobs-yet",
        "reports",
    ]
    assert '<tr data-queue="emails" class="dbq-paused-queue">' in html
    assert '<tr data-queue="no-jobs-yet" class="dbq-paused-queue">' in html
    assert '<tr data-queue="reports">' in html
    (emails,) = [row for row in response.context["rows"] if row["queue_name"] == "emails"]
    (reports,) = [row for row in response.context["rows"] if row["queue_name"] == "reports"]
    assert emails["paused_at"] is not None and reports["paused_at"] is None
    assert html.count('value="resume">Resume</button>') == 3  # two rows and the free form
    assert html.count('value="pause">Pause</button>') == 2  # reports and the free form
    forms = re.findall(r'<form[^>]*class="dbq-pause-form".*?</form>', html, re.S)
    assert len(forms) == 4 and all('method="post"' in form for form in forms)
    assert all("csrfmiddlewaretoken" in form for form in forms)


def test_the_buttons_pause_and_resume(admin_client):
    Job.objects.create(name="noop", queue_name="emails")
    url = reverse(PAUSE)
    response = admin_client.post(url, {"queue": "emails", "action": "pause"}, follow=True)
    assert response.redirect_chain == [(reverse(OVERVIEW), 302)]
    assert texts(response) == ["Queue “emails” paused."]
    assert queues.paused_queues() == ["emails"]
    response = admin_client.post(url, {"queue": "emails", "action": "pause"}, follow=True)
    assert texts(response) == ["Queue “emails” was paused already."]
    response = admin_client.post(url, {"queue": "emails", "action": "resume"}, follow=True)
    assert texts(response) == ["Queue “emails” resumed."]
    assert queues.paused_queues() == []


def test_a_bad_queue_name_or_action_changes_nothing(admin_client):
    url = reverse(PAUSE)
    response = admin_client.post(url, {"queue": "q" * 101, "action": "pause"}, follow=True)
    (message,) = texts(response)
    assert "Queue names are strings of 1 to 100 characters" in message
    response = admin_client.post(url, {"queue": "", "action": "pause"}, follow=True)
    assert "Queue names" in texts(response)[0]
    assert admin_client.post(url, {"queue": "emails", "action": "drop"}).status_code == 400
    assert admin_client.get(url, {"queue": "emails", "action": "pause"}).status_code == 405
    assert queues.paused_queues() == []


def test_pausing_needs_the_change_permission_on_jobs(client):
    Job.objects.create(name="noop", queue_name="emails")
    viewer = user_client(client, "view_job")
    html = viewer.get(reverse(OVERVIEW)).content.decode()
    assert "Pause</button>" not in html and "Resume</button>" not in html
    assert viewer.post(reverse(PAUSE), {"queue": "emails", "action": "pause"}).status_code == 403
    assert queues.paused_queues() == []
    Permission.objects.get(codename="change_job").user_set.add(User.objects.get(username="staff"))
    viewer = Client()
    viewer.force_login(User.objects.get(username="staff"))
    assert viewer.post(reverse(PAUSE), {"queue": "emails", "action": "pause"}).status_code == 302
    assert queues.paused_queues() == ["emails"]


def test_the_buttons_need_the_csrf_token(admin_user):
    strict = Client(enforce_csrf_checks=True)
    strict.force_login(admin_user)
    response = strict.post(reverse(PAUSE), {"queue": "emails", "action": "pause"})
    assert response.status_code == 403
    assert queues.paused_queues() == []


def test_the_overview_shows_each_queues_limits_beside_its_running_jobs(admin_client, settings):
    settings.DBQ_QUEUES = {
        "emails": {"concurrency": 3},
        "api": {"rate": "100/m"},
        "sms": {"concurrency": 2, "rate": "5/s"},
    }
    running = Job.objects.create(name="noop", queue_name="emails")
    Job.objects.filter(pk=running.pk).update(state="PROCESSING")
    for queue in ("emails", "reports", "api", "sms"):
        Job.objects.create(name="noop", queue_name=queue)
    response = admin_client.get(reverse(OVERVIEW))
    rows = {row["queue_name"]: row for row in response.context["rows"]}
    assert (rows["emails"]["limit"], rows["emails"]["running"]) == (3, 1)
    assert rows["reports"]["limit"] is None
    rates = [rows[queue]["rate"] for queue in ("api", "sms", "emails")]
    assert rates == ["100/m", "5/s", None]
    html = response.content.decode()
    concurrency = '<span title="DBQ_QUEUES concurrency">'
    rate = '<span title="DBQ_QUEUES rate: job starts per second, minute or hour">'
    assert f'<td class="dbq-limit">{concurrency}1 of 3</span></td>' in html
    assert f'<td class="dbq-limit">{rate}100/m</span></td>' in html
    assert f'<td class="dbq-limit">{concurrency}0 of 2</span>, {rate}5/s</span></td>' in html
    assert html.count('<td class="dbq-limit">-</td>') == 1  # reports
