"""The admin end to end in a real headless browser: Debian's chromium driven by Selenium.

Selenium gets the system chromedriver's path, so Selenium Manager never runs and
nothing is downloaded. Without chromium the test is skipped, except under CI
(env ``CI`` set), where it fails.
"""

import os

import pytest
from django.db import connection
from django.urls import reverse

from django_dbq.models import Job
from tests.conftest import ROOT

pytestmark = [
    pytest.mark.processes,
    pytest.mark.django_line,
    pytest.mark.django_db(transaction=True),
]

# Debian's packages "chromium" and "chromium-driver" (overridable to test the CI rule).
CHROMIUM = os.environ.get("DBQ_TEST_CHROMIUM", "/usr/bin/chromium")
CHROMEDRIVER = os.environ.get("DBQ_TEST_CHROMEDRIVER", "/usr/bin/chromedriver")
SCREENSHOTS = ROOT / "var"
WAIT = 60  # seconds; a bound on waiting for the page, not a timing assertion
CHROMIUM_ARGUMENTS = (
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-dev-shm-usage",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
    "--window-size=1400,1000",
)


def _unavailable(reason: str) -> None:
    if os.environ.get("CI"):
        pytest.fail(f"The browser test must run under CI: {reason}")
    pytest.skip(reason)


@pytest.fixture
def browser(tmp_path):
    missing = [path for path in (CHROMIUM, CHROMEDRIVER) if not os.access(path, os.X_OK)]
    if missing:
        _unavailable(f"missing {', '.join(missing)} (apt-get install chromium chromium-driver)")
    try:
        from selenium import webdriver
        from selenium.webdriver.chrome.service import Service
    except ImportError as error:
        _unavailable(f"selenium is not installed: {error}")
    options = webdriver.ChromeOptions()
    options.binary_location = CHROMIUM
    for argument in (*CHROMIUM_ARGUMENTS, f"--user-data-dir={tmp_path / 'chromium-profile'}"):
        options.add_argument(argument)
    driver = webdriver.Chrome(service=Service(CHROMEDRIVER), options=options)
    yield driver
    driver.quit()


def test_log_in_see_a_failed_job_and_retry_it(browser, live_server, admin_user, start_worker):
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support import expected_conditions as ec
    from selenium.webdriver.support.ui import Select, WebDriverWait

    # A job really fails in a real worker, so the admin shows a real traceback.
    job = Job.objects.create(name="failing")
    assert start_worker("--drain").wait() == 0
    job.refresh_from_db()
    assert job.state == "FAILED"

    wait = WebDriverWait(browser, WAIT)
    changelist = live_server.url + reverse("admin:django_dbq_job_changelist")
    browser.get(f"{live_server.url}{reverse('admin:login')}?next={changelist}")
    browser.find_element(By.NAME, "username").send_keys(admin_user.username)
    browser.find_element(By.NAME, "password").send_keys("password")
    browser.find_element(By.CSS_SELECTOR, "input[type=submit]").click()

    row = f"//tr[.//input[@name='_selected_action' and @value='{job.pk}']]"
    state = wait.until(ec.visibility_of_element_located((By.XPATH, f"{row}//span[@class]")))
    assert state.text == "Failed"

    # The detail page shows the error readably.
    browser.find_element(By.XPATH, f"{row}//th/a").click()
    traceback = wait.until(ec.visibility_of_element_located((By.CSS_SELECTOR, "pre.dbq-traceback")))
    assert "ValueError: task went wrong" in traceback.text
    browser.save_screenshot(str(SCREENSHOTS / f"admin-job-detail-{connection.vendor}.png"))

    # Back to the list: select the job and run the retry action.
    browser.get(changelist)
    wait.until(ec.element_to_be_clickable((By.XPATH, f"{row}//input"))).click()
    Select(browser.find_element(By.NAME, "action")).select_by_value("retry_jobs")
    browser.find_element(By.CSS_SELECTOR, "button[name=index]").click()

    success = wait.until(
        ec.visibility_of_element_located((By.CSS_SELECTOR, ".messagelist .success"))
    )
    assert success.text.startswith("Retried 1 job")
    state = wait.until(ec.visibility_of_element_located((By.XPATH, f"{row}//span[@class]")))
    assert state.text == "Ready"
    browser.save_screenshot(str(SCREENSHOTS / f"admin-retry-{connection.vendor}.png"))
    job.refresh_from_db()
    assert (job.state, job.attempts) == ("READY", 0)

    # The queue overview, linked from the list.
    browser.find_element(By.CSS_SELECTOR, "a.dbq-overview-link").click()
    cell = wait.until(
        ec.visibility_of_element_located((By.CSS_SELECTOR, "tr[data-queue] .dbq-due"))
    )
    assert cell.text == "1"
    browser.save_screenshot(str(SCREENSHOTS / f"admin-queue-overview-{connection.vendor}.png"))


def test_a_workflow_is_drawn_on_its_admin_page(browser, live_server, admin_user):
    """The drawing is there on screen: its screenshot holds the colours of its jobs' states."""
    import io

    from PIL import Image
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support import expected_conditions as ec
    from selenium.webdriver.support.ui import WebDriverWait

    from django_dbq import engine
    from django_dbq.admin.drawing import FILLS
    from django_dbq.workflows import Workflow
    from tests.helpers import claimer

    flow = Workflow(name="drawn")
    first = flow.add("noop")
    flow.add("noop", after=[first])
    flow.enqueue()
    (running,) = claimer().claim(1)
    assert engine.checkpoint(running, "")  # first COMPLETE, the second NEW
    page = live_server.url + reverse("admin:django_dbq_workflow_change", args=[flow.pk])
    browser.get(f"{live_server.url}{reverse('admin:login')}?next={page}")
    browser.find_element(By.NAME, "username").send_keys(admin_user.username)
    browser.find_element(By.NAME, "password").send_keys("password")
    browser.find_element(By.CSS_SELECTOR, "input[type=submit]").click()
    wait = WebDriverWait(browser, WAIT)
    drawing = wait.until(ec.visibility_of_element_located((By.ID, "dbq-workflow-drawing")))
    assert len(drawing.find_elements(By.CSS_SELECTOR, "g.dbq-node")) == 2
    shot = Image.open(io.BytesIO(drawing.screenshot_as_png)).convert("RGB")
    colours = {colour for _, colour in shot.getcolors(maxcolors=1 << 20)}

    def rgb(fill: str) -> tuple[int, int, int]:
        return tuple(int(fill[index : index + 2], 16) for index in (1, 3, 5))

    assert rgb(FILLS["COMPLETE"]) in colours and rgb(FILLS["NEW"]) in colours
    browser.save_screenshot(str(SCREENSHOTS / f"admin-workflow-{connection.vendor}.png"))


def test_the_overview_draws_the_queues_activity(browser, live_server, admin_user):
    """The charts are there on screen: completed and failed bars in their colours."""
    import datetime
    import io

    from django.utils import timezone
    from PIL import Image
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support import expected_conditions as ec
    from selenium.webdriver.support.ui import WebDriverWait

    from django_dbq.admin.charts import COMPLETED, FAILED

    now = timezone.now()
    for state in ("COMPLETE", "COMPLETE", "COMPLETE", "FAILED"):
        job = Job.objects.create(name="noop", queue_name="mail")
        ended = now - datetime.timedelta(minutes=3)
        Job.objects.filter(pk=job.pk).update(
            state=state, finished_at=ended, started_at=ended - datetime.timedelta(seconds=2)
        )
    page = live_server.url + reverse("admin:django_dbq_job_overview")
    browser.get(f"{live_server.url}{reverse('admin:login')}?next={page}")
    browser.find_element(By.NAME, "username").send_keys(admin_user.username)
    browser.find_element(By.NAME, "password").send_keys("password")
    browser.find_element(By.CSS_SELECTOR, "input[type=submit]").click()
    wait = WebDriverWait(browser, WAIT)
    section = wait.until(
        ec.visibility_of_element_located((By.CSS_SELECTOR, 'div.dbq-activity[data-queue="mail"]'))
    )
    hour = section.find_elements(By.CSS_SELECTOR, "svg.dbq-chart")[0]
    shot = Image.open(io.BytesIO(hour.screenshot_as_png)).convert("RGB")
    colours = {colour for _, colour in shot.getcolors(maxcolors=1 << 20)}

    def rgb(fill: str) -> tuple[int, int, int]:
        return tuple(int(fill[index : index + 2], 16) for index in (1, 3, 5))

    assert rgb(COMPLETED) in colours and rgb(FAILED) in colours
    browser.save_screenshot(str(SCREENSHOTS / f"admin-activity-{connection.vendor}.png"))
