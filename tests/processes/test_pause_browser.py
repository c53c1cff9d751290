"""The queue overview's Pause and Resume buttons in a real headless browser."""

import pytest
from django.db import connection
from django.urls import reverse

from django_dbq import queues
from django_dbq.models import Job
from tests.processes.test_browser import SCREENSHOTS, WAIT, browser  # noqa: F401 - the fixture

pytestmark = [
    pytest.mark.processes,
    pytest.mark.django_line,
    pytest.mark.django_db(transaction=True),
]


def test_pause_and_resume_a_queue_from_the_overview(browser, live_server, admin_user):  # noqa: F811
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support import expected_conditions as ec
    from selenium.webdriver.support.ui import WebDriverWait

    Job.objects.create(name="noop", queue_name="emails")
    wait = WebDriverWait(browser, WAIT)
    overview = live_server.url + reverse("admin:django_dbq_job_overview")
    browser.get(f"{live_server.url}{reverse('admin:login')}?next={overview}")
    browser.find_element(By.NAME, "username").send_keys(admin_user.username)
    browser.find_element(By.NAME, "password").send_keys("password")
    browser.find_element(By.CSS_SELECTOR, "input[type=submit]").click()

    row = "tr[data-queue='emails']"
    wait.until(ec.element_to_be_clickable((By.CSS_SELECTOR, f"{row} button[value=pause]"))).click()
    success = wait.until(
        ec.visibility_of_element_located((By.CSS_SELECTOR, ".messagelist .success"))
    )
    assert success.text == "Queue “emails” paused."
    badge = browser.find_element(By.CSS_SELECTOR, f"{row} .dbq-state-paused")
    assert badge.text == "Paused"
    assert queues.paused_queues() == ["emails"]
    browser.save_screenshot(str(SCREENSHOTS / f"admin-queue-paused-{connection.vendor}.png"))

    browser.find_element(By.CSS_SELECTOR, f"{row} button[value=resume]").click()
    success = wait.until(
        ec.visibility_of_element_located((By.CSS_SELECTOR, ".messagelist .success"))
    )
    assert success.text == "Queue “emails” resumed."
    assert queues.paused_queues() == []
