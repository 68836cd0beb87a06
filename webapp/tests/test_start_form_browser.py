"""datasets.html's start form in headless Chromium (Debian's package, driven by Playwright)
against a live server and real site APIs: Back after starting a job, and a refused form."""

import os
import re
import shutil

import pytest

from webapp.models import TrainingJob
from webapp.tests.conftest import free_port, register

CHROMIUM = os.environ.get("CHROMIUM", "/usr/bin/chromium")
pytestmark = [
    pytest.mark.browser,
    pytest.mark.django_db(transaction=True),
    pytest.mark.skipif(
        not shutil.which(CHROMIUM) and not os.environ.get("CI"),
        reason="Debian's chromium package is not installed (CI installs it)",
    ),
]
COUNTER = "[data-selection-count]"
BOXES = "input[name=datasets]"


@pytest.fixture
def page(owner, live_server, monkeypatch, settings):  # db first: the live server stops before it
    from playwright.sync_api import sync_playwright

    # Nothing listens there: each job started ends `error` at once, which is enough here.
    settings.FLOWER_SUPERLINK = f"127.0.0.1:{free_port()}"
    settings.FLOWER_CONTROL_TIMEOUT = 1
    settings.DASHBOARD_POLL = {"training": 0.3, "between_rounds": 0.8, "ended": 1.5}
    monkeypatch.setenv("DJANGO_ALLOW_ASYNC_UNSAFE", "true")  # Playwright's loop in this thread
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(
            executable_path=CHROMIUM,
            args=["--no-sandbox", "--disable-gpu", "--disable-background-networking"],
        )
        page = browser.new_context().new_page()
        page.set_default_timeout(10_000)
        script_errors: list[str] = []
        page.on("pageerror", lambda error: script_errors.append(str(error)))
        page.goto(f"{live_server.url}/accounts/login/")
        page.fill("input[name=username]", "alice")
        page.fill("input[name=password]", "alice-password-1")
        page.click("button[type=submit]")
        page.wait_for_url(f"{live_server.url}/jobs/")
        yield page
        page.goto("about:blank")
        browser.close()
    assert script_errors == []


def counter_matches_the_boxes(page) -> None:
    ticked = page.locator(f"{BOXES}:checked").count()
    expected = {0: "Select at least one dataset.", 1: "1 dataset selected."}.get(
        ticked, f"{ticked} datasets selected."
    )
    page.wait_for_function(
        "([sel, text]) => document.querySelector(sel).textContent.trim() === text",
        arg=[COUNTER, expected],
    )


def test_it_counts_the_ticked_boxes_after_back_and_opens_the_same_job_again(
    page, live_server, owner, site_apis
):
    register(owner, site_apis)
    page.goto(f"{live_server.url}/datasets/")
    boxes = page.locator(BOXES)
    boxes.nth(0).check()
    boxes.nth(1).check()
    page.fill("#id_name", "two hospitals")
    counter_matches_the_boxes(page)

    page.click("text=Start training")
    page.wait_for_url(re.compile(r"/jobs/\d+/$"))
    dashboard = page.url

    page.go_back()
    page.wait_for_url(f"{live_server.url}/datasets/")
    assert page.locator(f"{BOXES}:checked").count() == 2  # the browser kept the ticks…
    counter_matches_the_boxes(page)  # …and the counter says so

    page.click("text=Start training")
    page.wait_for_url(dashboard)
    page.wait_for_selector("text=This job was already started from this form")
    assert TrainingJob.objects.count() == 1


def test_it_keeps_a_refused_form_at_the_datasets_url_with_labels_and_ticks(
    page, live_server, owner, site_apis
):
    register(owner, site_apis)
    page.goto(f"{live_server.url}/datasets/")
    page.locator(BOXES).nth(0).check()
    page.fill("#id_name", "too many")
    page.fill("#id_min_clients", "3")

    page.click("text=Start training")

    page.wait_for_selector("#start-form-errors")
    assert page.url == f"{live_server.url}/datasets/"
    assert "Minimum clients: must be between 1 and the number of selected datasets (1)" in (
        page.text_content("#start-form-errors")
    )
    assert page.input_value("#id_name") == "too many"
    assert page.input_value("#id_min_clients") == "3"
    assert page.locator(f"{BOXES}:checked").count() == 1
    counter_matches_the_boxes(page)
    assert not TrainingJob.objects.exists()
