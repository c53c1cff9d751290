"""The Django admin for jobs, through Django's test client against the real database."""

import datetime
import re

import pytest
from django.contrib.admin.models import LogEntry
from django.contrib.auth.models import Permission, User
from django.contrib.messages import get_messages
from django.urls import reverse
from django.utils import timezone

from django_dbq.admin import queue_overview
from django_dbq.models import Job

pytestmark = [pytest.mark.database, pytest.mark.django_db]

CHANGELIST = "admin:django_dbq_job_changelist"
OVERVIEW = "admin:django_dbq_job_overview"
TRACEBACK = (
    "Traceback (most recent call last):\n"
    '  File "tests/jobs.py", line 26, in raise_error\n'
    "ValueError: <task went wrong> & more\n"
)


def make_job(name="noop", *, state="NEW", **values):
    """A job created the normal way, then moved to ``state`` as a worker would have."""
    job = Job.objects.create(name=name, queue_name=values.pop("queue_name", "default"))
    Job.objects.filter(pk=job.pk).update(state=state, **values)
    job.refresh_from_db()
    return job


def staff_client(client, *codenames, username="staff"):
    user = User.objects.create_user(username, password="pw", is_staff=True)
    user.user_permissions.set(
        Permission.objects.filter(content_type__app_label="django_dbq", codename__in=codenames)
    )
    client.force_login(user)
    return client


def run_action(client, action, *jobs, **extra):
    data = {"action": action, "_selected_action": [str(job.pk) for job in jobs], **extra}
    return client.post(reverse(CHANGELIST), data, follow=True)


def texts(response):
    return [str(message) for message in get_messages(response.wsgi_request)]


def listed(response):
    return {job.pk for job in response.context["cl"].result_list}


# -- list, filters, search --------------------------------------------------


def test_changelist_shows_state_queue_name_priority_attempts_and_age(admin_client):
    job = make_job("chain", state="FAILED", queue_name="reports", priority=5, attempts=1)
    response = admin_client.get(reverse(CHANGELIST))
    assert response.status_code == 200
    html = response.content.decode()
    assert str(job.pk)[:8] in html
    assert '<span class="dbq-state dbq-state-failed">Failed</span>' in html
    assert ">reports<" in html and ">chain<" in html
    assert "1 / 1" in html
    assert "Queue overview" in html  # link to the overview page
    assert "Add job" not in html  # jobs are created by code
    for column in ("short_id", "name", "state_badge", "queue_name", "priority", "age"):
        assert f"column-{column}" in html


def test_changelist_filters_by_state_queue_and_name(admin_client):
    failed = make_job("noop", state="FAILED")
    other_queue = make_job("noop", queue_name="other")
    chain = make_job("chain", state="COMPLETE")
    url = reverse(CHANGELIST)
    assert listed(admin_client.get(url)) == {failed.pk, other_queue.pk, chain.pk}
    assert listed(admin_client.get(url, {"state__exact": "FAILED"})) == {failed.pk}
    assert listed(admin_client.get(url, {"queue_name__exact": "other"})) == {other_queue.pk}
    assert listed(admin_client.get(url, {"name__exact": "chain"})) == {chain.pk}
    html = admin_client.get(url).content.decode()
    for choice in ("?state__exact=FAILED", "?queue_name=other", "?name=chain"):
        assert choice in html


def test_search_by_id_short_id_and_partial_name(admin_client):
    job = make_job("chain")
    other = make_job("noop")
    url = reverse(CHANGELIST)
    assert listed(admin_client.get(url, {"q": str(job.pk)})) == {job.pk}
    assert listed(admin_client.get(url, {"q": job.pk.hex})) == {job.pk}
    assert listed(admin_client.get(url, {"q": f"  {str(job.pk).upper()} "})) == {job.pk}
    assert job.pk in listed(admin_client.get(url, {"q": str(job.pk)[:8]}))
    assert listed(admin_client.get(url, {"q": "hai"})) == {job.pk}
    assert listed(admin_client.get(url, {"q": "noo"})) == {other.pk}
    assert listed(admin_client.get(url, {"q": "00000000-0000-4000-8000-000000000000"})) == set()


def test_search_by_exact_concurrency_key_and_the_detail_shows_it(admin_client):
    keyed = Job.objects.create(name="noop", concurrency_key="account:42", concurrency_limit=3)
    Job.objects.create(name="noop", concurrency_key="account:420")
    url = reverse(CHANGELIST)
    assert listed(admin_client.get(url, {"q": "account:42"})) == {keyed.pk}
    page = admin_client.get(reverse("admin:django_dbq_job_change", args=[keyed.pk]))
    assert "account:42" in page.content.decode()


# -- detail page ------------------------------------------------------------


def test_detail_shows_workspace_and_errors_readably(admin_client):
    errors = [
        {
            "attempt": 1,
            "step": "tests.jobs.raise_error",
            "type": "ValueError",
            "message": "<task went wrong> & more",
            "traceback": TRACEBACK,
            "at": "2026-01-02T03:04:05+00:00",
        },
        {
            "attempt": 2,
            "step": "tests.jobs.raise_error",
            "type": "WorkerLost",
            "message": "lease expired",
            "traceback": "",
            "at": "2026-01-02T03:05:00+00:00",
        },
    ]
    job = make_job(
        "failing",
        state="FAILED",
        workspace={"order": {"id": 7, "lines": ["a", "b"]}, "note": "<b>x</b>"},
        errors=errors,
        error="WorkerLost: lease expired",
        attempts=2,
    )
    response = admin_client.get(reverse("admin:django_dbq_job_change", args=[job.pk]))
    assert response.status_code == 200
    html = response.content.decode()
    # Pretty-printed, escaped JSON.
    assert '<pre class="dbq-json">{\n  &quot;note&quot;: &quot;&lt;b&gt;x&lt;/b&gt;&quot;,' in html
    assert "&quot;lines&quot;: [\n      &quot;a&quot;," in html
    # Every attempt's error, the traceback in a <pre>, escaped.
    assert "Attempt 1" in html and "Attempt 2" in html
    assert "<code>tests.jobs.raise_error</code>" in html
    assert "<strong>ValueError</strong>: &lt;task went wrong&gt; &amp; more" in html
    assert '<pre class="dbq-traceback">Traceback (most recent call last):\n' in html
    assert "ValueError: &lt;task went wrong&gt; &amp; more\n</pre>" in html
    assert '<pre class="dbq-traceback">WorkerLost: lease expired</pre>' in html
    # The worker's fields are read-only; the few editable ones are form fields.
    form = response.context["adminform"].form
    assert set(form.fields) == {"queue_name", "priority", "run_after", "max_attempts"}


def test_detail_of_a_job_without_errors(admin_client):
    job = make_job("noop", workspace=None)
    response = admin_client.get(reverse("admin:django_dbq_job_change", args=[job.pk]))
    assert response.status_code == 200
    assert '<pre class="dbq-json">null</pre>' in response.content.decode()


def test_saving_the_form_writes_only_the_edited_fields(admin_client):
    job = make_job("chain", state="READY", workspace={"input": 1})
    url = reverse("admin:django_dbq_job_change", args=[job.pk])
    assert admin_client.get(url).status_code == 200
    # A worker moves the job on while the form is open.
    Job.objects.filter(pk=job.pk).update(state="PROCESSING", workspace={"input": 1, "one": 2})
    data = {
        "queue_name": "default",
        "priority": "9",
        "run_after_0": "",
        "run_after_1": "",
        "max_attempts": "1",
        "_save": "Save",
    }
    response = admin_client.post(url, data)
    assert response.status_code == 302
    job.refresh_from_db()
    assert job.priority == 9
    assert job.state == "PROCESSING"
    assert job.workspace == {"input": 1, "one": 2}


# -- actions ----------------------------------------------------------------


def test_retry_action_retries_failed_and_cancelled_jobs_and_skips_others(admin_client):
    failed = make_job("chain", state="FAILED", next_task="tests.jobs.step_two", attempts=1)
    cancelled = make_job("noop", state="CANCELLED")
    complete = make_job("noop", state="COMPLETE")
    response = run_action(admin_client, "retry_jobs", failed, cancelled, complete)
    assert response.status_code == 200
    for job in (failed, cancelled, complete):
        job.refresh_from_db()
    assert (failed.state, failed.next_task, failed.attempts) == ("READY", "tests.jobs.step_two", 0)
    assert cancelled.state == "READY"
    assert complete.state == "COMPLETE"
    assert texts(response) == [
        "Retried 2 jobs: they are READY to run again from the step they stopped at.",
        "Skipped 1 job that was not FAILED or CANCELLED.",
    ]
    history = LogEntry.objects.filter(object_id__in=[str(failed.pk), str(cancelled.pk)])
    assert (
        sorted(entry.get_change_message() for entry in history) == ["Retried from the admin."] * 2
    )


def test_retry_action_reports_a_job_whose_definition_is_gone(admin_client):
    job = make_job("noop", state="FAILED")
    Job.objects.filter(pk=job.pk).update(name="removed_from_jobs")
    response = run_action(admin_client, "retry_jobs", job)
    job.refresh_from_db()
    assert job.state == "FAILED"
    (message,) = texts(response)
    assert message.startswith(f"Could not retry {str(job.pk)[:8]} (removed_from_jobs): ")
    assert "removed_from_jobs" in message.split(": ", 1)[1]


def test_cancel_action_cancels_waiting_jobs_and_asks_running_ones_to_stop(admin_client):
    waiting = make_job("noop", state="READY")
    running = make_job("chain", state="PROCESSING")
    complete = make_job("noop", state="COMPLETE")
    response = run_action(admin_client, "cancel_jobs", waiting, running, complete)
    for job in (waiting, running, complete):
        job.refresh_from_db()
    assert waiting.state == "CANCELLED"
    assert (running.state, running.cancel_requested) == ("PROCESSING", True)
    assert complete.state == "COMPLETE"
    assert texts(response) == [
        "Cancelled 1 waiting job: it will not run.",
        "Asked 1 running job to stop: it will not go on to its next step.",
        "Skipped 1 job that had already finished.",
    ]
    html = admin_client.get(reverse(CHANGELIST)).content.decode()
    assert "Processing (cancel requested)" in html


def post_button(client, job, action):
    """Press the Retry/Cancel button of the job's detail page (a plain form, no JavaScript)."""
    page = client.get(reverse("admin:django_dbq_job_change", args=[job.pk]))
    assert (action, "Retry" if action == "retry_jobs" else "Cancel") in page.context[
        "dbq_job_actions"
    ]
    url = page.context["dbq_action_url"]
    data = {"action": action, "_selected_action": str(job.pk), "index": "0"}
    return client.post(url, data, follow=True)


def test_detail_page_buttons_retry_and_cancel_the_job(admin_client):
    failed = make_job("chain", state="FAILED", next_task="tests.jobs.step_three")
    response = post_button(admin_client, failed, "retry_jobs")
    failed.refresh_from_db()
    assert (failed.state, failed.next_task) == ("READY", "tests.jobs.step_three")
    assert listed(response) == {failed.pk}  # back on the list, showing this job
    assert texts(response)[0].startswith("Retried 1 job")
    # Now waiting: the page offers Cancel, not Retry.
    page = admin_client.get(reverse("admin:django_dbq_job_change", args=[failed.pk]))
    assert [action for action, _ in page.context["dbq_job_actions"]] == ["cancel_jobs"]
    assert 'name="dbq_cancel_jobs"' in page.content.decode()
    post_button(admin_client, failed, "cancel_jobs")
    failed.refresh_from_db()
    assert failed.state == "CANCELLED"
    # A finished job can be retried; a completed one offers nothing.
    page = admin_client.get(reverse("admin:django_dbq_job_change", args=[failed.pk]))
    assert [action for action, _ in page.context["dbq_job_actions"]] == ["retry_jobs"]
    done = make_job("noop", state="COMPLETE")
    page = admin_client.get(reverse("admin:django_dbq_job_change", args=[done.pk]))
    assert page.context["dbq_job_actions"] == []
    assert 'name="dbq_' not in page.content.decode()


def test_delete_action_deletes_after_confirmation(admin_client):
    doomed = make_job("noop", state="FAILED")
    kept = make_job("noop")
    confirm = run_action(admin_client, "delete_selected", doomed)
    assert confirm.status_code == 200
    assert "Are you sure" in confirm.content.decode()
    assert Job.objects.filter(pk=doomed.pk).exists()
    response = run_action(admin_client, "delete_selected", doomed, post="yes")
    assert not Job.objects.filter(pk=doomed.pk).exists()
    assert Job.objects.filter(pk=kept.pk).exists()
    assert texts(response) == ["Successfully deleted 1 job."]


def test_actions_follow_permissions(client):
    staff = staff_client(client, "view_job")
    job = make_job("noop", state="FAILED")
    response = staff.get(reverse(CHANGELIST))
    assert response.status_code == 200
    assert response.context["action_form"] is None  # no action without change/delete permission
    for action in ("retry_jobs", "cancel_jobs", "delete_selected"):
        response = run_action(staff, action, job, post="yes")
        assert response.status_code == 200
        assert texts(response) == []  # the changelist takes no action from them at all
        job.refresh_from_db()
        assert job.state == "FAILED"
    # The detail page is read-only for them, without Retry/Cancel buttons.
    response = staff.get(reverse("admin:django_dbq_job_change", args=[job.pk]))
    assert response.status_code == 200
    assert not response.context["adminform"].form.fields
    assert response.context["dbq_job_actions"] == []
    assert 'name="dbq_' not in response.content.decode()


def test_change_permission_allows_retry_and_cancel_but_not_delete(client):
    staff = staff_client(client, "view_job", "change_job")
    failed = make_job("noop", state="FAILED")
    waiting = make_job("noop")
    action_form = staff.get(reverse(CHANGELIST)).context["action_form"]
    choices = {name for name, _ in action_form.fields["action"].choices}
    assert choices == {"", "retry_jobs", "cancel_jobs"}
    run_action(staff, "retry_jobs", failed)
    run_action(staff, "cancel_jobs", waiting)
    response = run_action(staff, "delete_selected", failed, post="yes")
    assert texts(response) == ["No action selected."]
    failed.refresh_from_db()
    waiting.refresh_from_db()
    assert (failed.state, waiting.state) == ("READY", "CANCELLED")


def test_delete_permission_alone_allows_delete(client):
    staff = staff_client(client, "view_job", "delete_job")
    job = make_job("noop", state="COMPLETE")
    run_action(staff, "delete_selected", job, post="yes")
    assert not Job.objects.filter(pk=job.pk).exists()


# -- queue overview ---------------------------------------------------------


@pytest.fixture
def queues():
    now = timezone.now()
    hours = datetime.timedelta(hours=1)
    minutes = datetime.timedelta(minutes=1)
    # "default": two due jobs (the oldest due one waiting 30 min), one scheduled later.
    make_job("noop", created=now - 2 * hours, run_after=now - 30 * minutes)
    make_job("noop", state="READY", created=now - 10 * minutes)
    make_job("noop", created=now - 3 * hours, run_after=now + hours)
    make_job("noop", state="PROCESSING")
    make_job("noop", state="COMPLETE", finished_at=now - 5 * minutes)
    make_job("noop", state="FAILED", finished_at=now - 50 * minutes)
    make_job("noop", state="COMPLETE", finished_at=now - 2 * hours)
    # "reports": only finished and cancelled work.
    make_job("noop", queue_name="reports", state="CANCELLED", finished_at=now - 1 * minutes)
    make_job("noop", queue_name="reports", state="COMPLETE", finished_at=now - 3 * hours)
    return now


def test_queue_overview_counts_in_one_query(queues, django_assert_num_queries):
    with django_assert_num_queries(1):
        rows = queue_overview(Job.objects.all(), queues)
    default, reports = rows
    assert default["queue_name"] == "default"
    assert default["states"] == {
        "NEW": 2,
        "READY": 1,
        "PROCESSING": 1,
        "STOPPING": 0,
        "FAILED": 1,
        "COMPLETE": 2,
        "CANCELLED": 0,
        "WAITING": 0,
    }
    assert default["total"] == 7
    assert default["due"] == 2
    assert 30 * 60 - 1 <= default["oldest_wait_seconds"] <= 30 * 60 + 1
    assert default["finished_last_hour"] == 2
    assert reports["queue_name"] == "reports"
    assert (reports["states"]["CANCELLED"], reports["states"]["COMPLETE"]) == (1, 1)
    assert (reports["due"], reports["oldest_due"], reports["finished_last_hour"]) == (0, None, 1)


def test_queue_overview_page(admin_client, queues):
    changelist = admin_client.get(reverse(CHANGELIST)).content.decode()
    url = reverse(OVERVIEW)
    assert f'href="{url}"' in changelist
    response = admin_client.get(url)
    assert response.status_code == 200
    html = response.content.decode()
    assert "<h1>Queue overview</h1>" in html
    assert '<tr data-queue="default">' in html and '<tr data-queue="reports">' in html
    assert '<td class="dbq-due">2</td>' in html
    assert re.search(r'<td class="dbq-oldest">\d+\s+minutes</td>', html)
    assert '<td class="dbq-finished">2</td>' in html and '<td class="dbq-finished">1</td>' in html
    assert "?queue_name=default&amp;state__exact=FAILED" in html
    (default,) = [row for row in response.context["rows"] if row["queue_name"] == "default"]
    assert [count for count, _ in default["cells"]] == [2, 1, 1, 0, 1, 2, 0, 0]
    assert default["oldest_wait_seconds"] >= 30 * 60
    assert response.context["totals"] == [2, 1, 1, 0, 1, 3, 1, 0]


def test_queue_overview_with_no_jobs(admin_client):
    response = admin_client.get(reverse(OVERVIEW))
    assert response.status_code == 200
    assert "There are no jobs." in response.content.decode()


def test_queue_overview_needs_view_permission(client):
    make_job("noop")
    url = reverse(OVERVIEW)
    response = client.get(url)
    assert response.status_code == 302 and "/admin/login/" in response["Location"]
    staff = staff_client(client)
    assert staff.get(url).status_code == 403
    staff.logout()
    assert staff_client(client, "view_job", username="viewer").get(url).status_code == 200


# -- without django.contrib.admin -------------------------------------------
