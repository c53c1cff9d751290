"""The admin's workflow pages, through the test client: the list, the drawing, cancelling."""

import re

import pytest
from django.urls import reverse

from django_dbq import engine
from django_dbq.admin.drawing import MOST_DRAWN
from django_dbq.models import Job
from django_dbq.workflows import Workflow
from tests.databases.test_workflows import diamond
from tests.helpers import claimer

pytestmark = [pytest.mark.database, pytest.mark.django_db(transaction=True)]


def drawing_in(html: str) -> str:
    """The workflow's drawing in the page (the admin has SVG icons of its own)."""
    return re.search(r'<svg [^>]*class="dbq-workflow".*?</svg>', html, re.S).group(0)


def diamond_run_halfway() -> tuple[Workflow, list[Job]]:
    """tests/databases/test_workflows.py's diamond, its first job complete."""
    flow, jobs = diamond()
    (running,) = claimer().claim(1)
    assert engine.checkpoint(running, "")
    return flow, jobs


def test_the_workflow_page_draws_every_job_and_edge_with_its_state(admin_client):
    flow, (a, b, c, d) = diamond_run_halfway()
    response = admin_client.get(reverse("admin:django_dbq_workflow_change", args=[flow.pk]))
    assert response.status_code == 200
    html = response.content.decode()
    svg = drawing_in(html)
    states = re.findall(r'<g class="dbq-node" data-state="(\w+)">', svg)
    assert sorted(states) == ["COMPLETE", "NEW", "NEW", "WAITING"]
    assert svg.count('class="dbq-edge"') == 4
    for job in (a, b, c, d):
        assert reverse("admin:django_dbq_job_change", args=[job.pk]) in svg
    counts = re.findall(r"<li><strong>(\d+)</strong> (\w+)</li>", html)
    assert sorted(counts) == [("1", "Complete"), ("1", "Waiting"), ("2", "New")]


def test_a_big_workflow_is_drawn_one_box_per_column(admin_client):
    flow = Workflow(name="big")
    parts = [flow.add("noop") for _ in range(MOST_DRAWN + 1)]
    flow.add("noop", after=parts)
    flow.enqueue()
    response = admin_client.get(reverse("admin:django_dbq_workflow_change", args=[flow.pk]))
    svg = drawing_in(response.content.decode())
    assert svg.count('class="dbq-node"') == 2
    assert f"{MOST_DRAWN + 1} job(s)" in svg and svg.count('class="dbq-edge"') == 1


def test_the_list_shows_outcomes_and_its_action_cancels_workflows(admin_client):
    flow, jobs = diamond_run_halfway()
    changelist = reverse("admin:django_dbq_workflow_changelist")
    assert "running" in admin_client.get(changelist).content.decode()
    data = {"action": "cancel_workflows", "_selected_action": [str(flow.pk)]}
    response = admin_client.post(changelist, data, follow=True)
    assert "Cancelled 3 job(s)." in response.content.decode()
    assert [Job.objects.get(pk=job.pk).state for job in jobs] == ["COMPLETE"] + ["CANCELLED"] * 3
    assert flow.status()["state"] == "failed"


def test_cancelling_needs_the_permission_to_change_jobs(client):
    from tests.databases.test_admin import staff_client

    flow, jobs = diamond_run_halfway()
    viewer = staff_client(client, "view_workflow", "view_job")
    changelist = reverse("admin:django_dbq_workflow_changelist")
    page = viewer.get(reverse("admin:django_dbq_workflow_change", args=[flow.pk]))
    assert page.status_code == 200 and 'class="dbq-workflow"' in page.content.decode()
    assert "cancel_workflows" not in viewer.get(changelist).content.decode()
    data = {"action": "cancel_workflows", "_selected_action": [str(flow.pk)]}
    viewer.post(changelist, data, follow=True)
    assert Job.objects.filter(state="CANCELLED").count() == 0
