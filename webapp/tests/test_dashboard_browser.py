"""client_dashboard.html in headless Chromium (Debian's package, driven by Playwright)
against a live server, with tracking advanced by the test through the real writer."""

import csv
import io
import time
from pathlib import Path

import pytest

from webapp import jobs, tracking
from webapp.models import TrainingJob
from webapp.tests.browser import BROWSER_TEST, logged_in_page
from webapp.tests.factories import make_job, report
from webapp.tracking.status import dashboard_groups

pytestmark = BROWSER_TEST
# Short intervals keep the file fast; their ratios are the real ones' (3 s / 8 s / 30 s).
FAST_POLL = {
    "training": 0.3,
    "between_rounds": 0.8,
    "ended": 1.5,
    "retry_base": 0.3,
    "retry_max": 1,
}
CHART = "Chart.getChart(document.querySelector('#performance-chart'))"


@pytest.fixture
def page(owner, live_server, monkeypatch, settings):  # db first: the live server stops before it
    settings.DASHBOARD_POLL = FAST_POLL
    with logged_in_page(live_server, monkeypatch, accept_downloads=True) as page:
        yield page


def open_dashboard(page, live_server, job: TrainingJob, hash_: str = "") -> None:
    page.goto(f"{live_server.url}/jobs/{job.pk}/{hash_}")
    page.wait_for_selector("#client-list [data-client-id]")


def wait_for_poll_mode(page, mode: str) -> int:
    page.wait_for_function(f"document.getElementById('dashboard').dataset.pollMode === '{mode}'")
    return int(page.get_attribute("#dashboard", "data-poll-interval"))


def test_it_updates_clients_live_and_draws_real_history_and_timeline(page, live_server, owner):
    job = make_job(owner, status="running")
    barcelona, madrid = list(job.clients_status)
    report(job, barcelona, 1, accuracy=0.75, loss=0.6)

    open_dashboard(page, live_server, job)
    page.wait_for_selector("text=Hospital Barcelona")
    page.wait_for_selector("text=Hospital Madrid")
    page.wait_for_selector("text=75.0%")
    page.evaluate("window.__notReloaded = true")

    report(job, madrid, 1, accuracy=0.9, loss=0.3)
    report(job, barcelona, 2, accuracy=0.8, loss=0.4)

    page.wait_for_selector("#client-list >> text=90.0%")
    page.wait_for_selector("#client-list >> text=80.0%")
    # The average is the latest round's (Barcelona's round 2), not Madrid's round 1 with it.
    assert page.text_content('[data-stat="accuracy"]') == "80.0%"
    assert page.text_content('[data-stat="accuracy-hint"]') == "round 2, 1 client"
    assert page.text_content('[data-stat="samples"]') == "80"
    assert page.evaluate("window.__notReloaded") is True  # updated without a reload

    page.click("#client-list >> text=Hospital Barcelona")
    page.wait_for_function(
        f"() => {{ const c = {CHART}; return c && c.data.labels.length === 2; }}"
    )
    chart = page.evaluate(
        f"() => {{ const c = {CHART}; return {{labels: c.data.labels,"
        " data: c.data.datasets.map(d => d.data)}; }"
    )
    assert chart["labels"] == ["Round 1", "Round 2"]
    assert [75.0, 80.0] in [[round(v, 1) for v in series] for series in chart["data"]]
    assert page.url.endswith(f"#{barcelona}")  # #client_<8 hex>: the id, prefix not doubled
    page.wait_for_selector("#client-timeline >> text=Reported round 2")
    timeline = page.locator("#client-timeline .timeline-text").all_text_contents()
    assert timeline == [
        "Reported round 2",
        "Started round 2",
        "Reported round 1",
        "Started round 1",
    ]
    assert page.text_content('[data-field="address"]') == "127.0.0.1:5000"
    assert page.text_content('[data-field="id"]') == barcelona


def test_it_opens_the_client_named_in_the_url_and_shows_its_reason(page, live_server, owner):
    job = make_job(owner, status="running")
    _, madrid = list(job.clients_status)
    tracker = tracking.ClientTracker(job.pk)
    tracker.connected(madrid, 9)
    tracker.failed(madrid, 1, "accuracy=1.7 is outside [0.0, 1.0]")
    tracker.flush()

    open_dashboard(page, live_server, job, f"#client_{madrid}")  # an older, doubled link

    page.wait_for_selector('[data-detail="title"] >> text=Hospital Madrid')
    assert page.text_content('[data-field="status"]') == "Error"
    assert "outside [0.0, 1.0]" in page.text_content('[data-field="status_reason"]')
    page.wait_for_selector("#client-timeline >> text=Error in round 1: accuracy=1.7")
    # problems first, with a text label and not only a colour
    first_row = page.locator("#client-list [data-client-id]").first
    assert first_row.get_attribute("data-client-id") == madrid
    assert "Error" in first_row.text_content()


def test_it_shows_a_stale_banner_while_the_api_fails_and_recovers(page, live_server, owner):
    job = make_job(owner, status="running")
    barcelona = next(iter(job.clients_status))
    open_dashboard(page, live_server, job)
    assert page.is_hidden("#notice-connection")

    failing = "**/api/jobs/*/clients/"
    page.route(failing, lambda route: route.fulfill(status=500, body="oops"))
    page.wait_for_selector("#notice-connection", state="visible")
    page.wait_for_selector("#notice-connection >> text=/retrying in \\d+ s/")
    assert wait_for_poll_mode(page, "retrying") >= 300
    report(job, barcelona, 1, accuracy=0.66, loss=0.5)

    page.unroute(failing)

    page.wait_for_selector("#notice-connection", state="hidden")
    page.wait_for_selector("#client-list >> text=66.0%")  # recovered without a reload
    wait_for_poll_mode(page, "between_rounds")


def test_it_polls_fast_while_clients_train_and_slowly_once_the_job_ended(page, live_server, owner):
    job = make_job(owner, status="running")
    barcelona = next(iter(job.clients_status))
    open_dashboard(page, live_server, job)

    between = wait_for_poll_mode(page, "between_rounds")
    tracker = tracking.ClientTracker(job.pk)
    tracker.training(barcelona, 1)
    tracker.flush()
    training = wait_for_poll_mode(page, "training")
    jobs.finish_job(job.pk, "completed")
    ended = wait_for_poll_mode(page, "ended")

    assert (training, between, ended) == (300, 800, 1500)
    page.wait_for_selector('[data-job="live-state"] >> text=Job ended')

    set_hidden = """(hidden) => {
        Object.defineProperty(document, 'hidden', {configurable: true, get: () => hidden});
        document.dispatchEvent(new Event('visibilitychange'));
    }"""
    page.evaluate(set_hidden, True)
    assert page.get_attribute("#dashboard", "data-poll-interval") == str(4 * 1500)
    page.evaluate(set_hidden, False)
    page.wait_for_function("document.getElementById('dashboard').dataset.pollInterval === '1500'")


def test_it_gets_304s_for_unchanged_snapshots_and_200_after_a_change(page, live_server, owner):
    job = make_job(owner, status="running")
    barcelona = next(iter(job.clients_status))
    answers: list[int] = []
    page.on(
        "response",
        lambda r: (
            answers.append(r.status) if r.url.endswith(f"/api/jobs/{job.pk}/clients/") else None
        ),
    )
    open_dashboard(page, live_server, job)

    clients_url = f"/api/jobs/{job.pk}/clients/"
    page.wait_for_event("response", lambda r: r.url.endswith(clients_url) and r.status == 304)
    assert answers[0] == 200
    assert set(answers) <= {200, 304}

    seen = len(answers)
    report(job, barcelona, 1, accuracy=0.55, loss=0.5)
    page.wait_for_selector("#client-list >> text=55.0%")
    assert 200 in answers[seen:]
    page.wait_for_selector('[data-job="live-state"] >> text=/updated/')


def test_it_handles_200_clients_updating_only_the_rows_that_changed(page, live_server, owner):
    sites = [(f"Site {i:03d}", "breast_cancer") for i in range(200)]
    job = make_job(owner, sites, status="running")
    ids = list(job.clients_status)
    tracker = tracking.ClientTracker(job.pk)
    for client_id in ids:
        tracker.connected(client_id, 1)
    tracker.failed(ids[150], 1, "the site's dataset changed")
    tracker.lost(ids[151], 1, "node left the SuperLink")
    tracker.flush()

    open_dashboard(page, live_server, job)
    page.wait_for_function(
        "document.querySelectorAll('#client-list [data-client-id]').length === 200"
    )
    assert (
        page.locator("#client-list [data-client-id]").first.get_attribute("data-client-id")
        == (ids[150])
    )
    assert page.text_content('[data-stat="health"]') == "99%"
    assert page.text_content('[data-stat="warning"]') == "2"
    page.evaluate(
        """() => {
        window.__rows = new Map([...document.querySelectorAll('#client-list [data-client-id]')]
            .map(b => [b.dataset.clientId, b]));
        window.__listMutations = 0;
        new MutationObserver(m => { window.__listMutations += m.length; })
            .observe(document.getElementById('client-list'), {childList: true});
    }"""
    )

    report(job, ids[7], 1, accuracy=0.42, loss=0.5)
    page.wait_for_selector("#client-list >> text=42.0%")

    same_nodes = page.evaluate(
        """() => [...document.querySelectorAll('#client-list [data-client-id]')]
            .every(b => window.__rows.get(b.dataset.clientId) === b)"""
    )
    assert same_nodes
    assert page.evaluate("window.__listMutations") == 0  # no row moved, added or rebuilt

    filter_values = page.eval_on_selector_all("#client-filter option", "os => os.map(o => o.value)")
    warning = dashboard_groups()["warning"]
    assert filter_values[: 2 + len(warning)] == ["", "problems", *warning]
    assert sorted(filter_values[2:]) == sorted(dashboard_groups()["all"])  # the server's statuses
    page.select_option("#client-filter", "problems")
    assert page.locator("#client-list [data-client-id]:visible").count() == 2
    page.select_option("#client-filter", "")

    page.focus(f"#client-row-{ids[150]}")
    page.keyboard.press("ArrowDown")  # the offline client, second of the problems
    page.keyboard.press("ArrowDown")  # then the others by name: Site 000
    page.keyboard.press("Enter")
    assert page.url.endswith(f"#{ids[0]}")


def test_it_ticks_last_seen_every_second_between_polls(page, live_server, owner):
    job = make_job(owner, status="completed")  # ended: polls are the slowest
    barcelona = next(iter(job.clients_status))
    tracker = tracking.ClientTracker(job.pk)
    tracker.connected(barcelona, 1)
    tracker.flush()
    open_dashboard(page, live_server, job)
    seen = f"#client-row-{barcelona} .client-seen"
    first = page.text_content(seen)

    page.wait_for_function(
        f"(first) => document.querySelector('{seen}').textContent !== first", arg=first
    )
    assert page.text_content(seen).startswith("seen ")


def test_it_stops_the_job_and_offers_the_history_download(page, live_server, owner):
    job = make_job(owner, status="running")
    report(job, next(iter(job.clients_status)), 1, accuracy=0.7, loss=0.5)
    open_dashboard(page, live_server, job)
    assert page.is_hidden("#download-model")

    with page.expect_download() as download:
        page.click("#download-history")
    rows = list(csv.DictReader(io.StringIO(Path(download.value.path()).read_text())))
    assert [(r["connection_name"], r["round"]) for r in rows] == [("Hospital Barcelona", "1")]

    page.once("dialog", lambda dialog: dialog.accept())
    page.click("#stop-job-button")
    page.wait_for_selector('[data-job="status-badge"] >> text=Stopped')
    job.refresh_from_db()
    assert job.status == "stopped"
    assert page.is_hidden("#stop-job-form")
    # a stop is the user's choice: a neutral notice of who and when, not a red "Job error"
    page.wait_for_selector("#job-stopped >> text=/^Stopped by alice at .+/")
    assert page.is_hidden("#job-error")
    page.reload()  # the page as the server renders it says the same
    page.wait_for_selector("#job-stopped >> text=/^Stopped by alice at .+/")
    assert page.is_hidden("#job-error")


def test_it_shows_the_end_of_the_job_within_one_fast_poll_of_the_final_round(
    page, live_server, owner, settings
):
    # Between rounds ~17× slower than training here: an end seen at that pace cannot pass.
    settings.DASHBOARD_POLL = {**FAST_POLL, "between_rounds": 5}
    job = make_job(owner, status="running", total_rounds=2)
    barcelona, madrid = list(job.clients_status)
    open_dashboard(page, live_server, job)
    assert wait_for_poll_mode(page, "between_rounds") == 5000

    tracker = tracking.ClientTracker(job.pk)
    tracker.job(current_round=2)  # the final round, as the round loop writes it
    tracker.flush()
    for client in (barcelona, madrid):  # its reports are in: nobody trains any more
        report(job, client, 2, accuracy=0.8, loss=0.4)
    assert wait_for_poll_mode(page, "training") == 300
    jobs.finish_job(job.pk, "completed")
    ended_at = time.monotonic()
    page.wait_for_selector('[data-job="status-badge"] >> text=Completed')

    assert time.monotonic() - ended_at < 0.3 + 1.5  # one training poll, plus the page's own work


def test_it_says_job_not_found_once_the_job_is_gone(page, live_server, owner):
    job = make_job(owner, status="running")
    open_dashboard(page, live_server, job)

    job.delete()

    page.wait_for_selector("#notice-not-found", state="visible")
    assert page.get_attribute("#dashboard", "data-poll-mode") == "halted"


def test_it_sends_an_expired_session_to_the_login_page(page, live_server, owner):
    job = make_job(owner, status="running")
    open_dashboard(page, live_server, job)

    page.context.clear_cookies()

    page.wait_for_url("**/accounts/login/?next=*")
