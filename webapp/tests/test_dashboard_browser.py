"""client_dashboard.html in headless Chromium (Debian's package, driven by Playwright)
against a live server, with tracking advanced by the test through the real writer."""

import os
import shutil

import pytest

from webapp.tests.factories import make_job, report

CHROMIUM = os.environ.get("CHROMIUM", "/usr/bin/chromium")
pytestmark = [
    pytest.mark.browser,
    pytest.mark.django_db(transaction=True),
    pytest.mark.skipif(
        not shutil.which(CHROMIUM) and not os.environ.get("CI"),
        reason="Debian's chromium package is not installed (CI installs it)",
    ),
]


@pytest.fixture
def page(owner, live_server, monkeypatch):  # db first: the live server must stop before it
    from playwright.sync_api import sync_playwright

    # Playwright's sync API runs an event loop in this thread; the test's ORM calls are
    # still plain synchronous code.
    monkeypatch.setenv("DJANGO_ALLOW_ASYNC_UNSAFE", "true")
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(
            executable_path=CHROMIUM,
            args=["--no-sandbox", "--disable-gpu", "--disable-background-networking"],
        )
        context = browser.new_context()
        page = context.new_page()
        page.goto(f"{live_server.url}/accounts/login/")
        page.fill("input[name=username]", "alice")
        page.fill("input[name=password]", "alice-password-1")
        page.click("button[type=submit]")
        page.wait_for_url(f"{live_server.url}/jobs/")
        yield page
        page.goto("about:blank")  # stop polling before the live server and database go away
        browser.close()


def test_it_updates_clients_live_and_draws_real_history(page, live_server, owner, settings):
    settings.CLIENT_TRACKING_UPDATE_INTERVAL = 1
    job = make_job(owner, status="running")
    barcelona, madrid = list(job.clients_status)
    report(job, barcelona, 1, accuracy=0.75, loss=0.6)

    page.goto(f"{live_server.url}/jobs/{job.pk}/")
    page.wait_for_selector("text=Hospital Barcelona")
    page.wait_for_selector("text=Hospital Madrid")
    page.wait_for_selector("text=75.0%")
    page.evaluate("window.__notReloaded = true")

    report(job, madrid, 1, accuracy=0.9, loss=0.3)
    report(job, barcelona, 2, accuracy=0.8, loss=0.4)

    page.wait_for_selector("text=90.0%", timeout=10_000)
    page.wait_for_selector("text=80.0%", timeout=10_000)
    assert page.evaluate("window.__notReloaded") is True  # updated without a reload

    page.click("text=Hospital Barcelona")
    page.wait_for_function(
        "() => { const c = Chart.getChart(document.querySelector('canvas'));"
        " return c && c.data.labels.length === 2; }",
        timeout=10_000,
    )
    chart = page.evaluate(
        "() => { const c = Chart.getChart(document.querySelector('canvas'));"
        " return {labels: c.data.labels, data: c.data.datasets.map(d => d.data)}; }"
    )
    assert chart["labels"] == ["Round 1", "Round 2"]
    assert [75.0, 80.0] in [[round(v, 1) for v in series] for series in chart["data"]]
    assert page.url.endswith(f"#client_{barcelona}")
