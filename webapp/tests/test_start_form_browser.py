"""datasets.html's start form in headless Chromium (Debian's package, driven by Playwright)
against a live server and real site APIs: Back after starting a job, and a refused form."""

import re

import pytest

from webapp.models import TrainingJob
from webapp.tests.browser import BROWSER_TEST, logged_in_page
from webapp.tests.conftest import free_port, register

pytestmark = BROWSER_TEST
COUNTER = "[data-selection-count]"
BOXES = "input[name=datasets]"


@pytest.fixture
def page(owner, live_server, monkeypatch, settings):  # db first: the live server stops before it
    # Nothing listens there: each job started ends `error` at once, which is enough here.
    settings.FLOWER_SUPERLINK = f"127.0.0.1:{free_port()}"
    settings.FLOWER_CONTROL_TIMEOUT = 1
    settings.DASHBOARD_POLL = {"training": 0.3, "between_rounds": 0.8, "ended": 1.5}
    with logged_in_page(live_server, monkeypatch) as page:
        yield page


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
