"""Names and free text from sites and users are shown as text on every page: a site named
`<script>alert(1)</script>` offering a dataset of that name runs no script anywhere."""

import threading

import pytest

from clients.config import load_site_config
from clients.site import make_api_server
from clients.tests.helpers import write_breast_cancer_csv, write_site_toml
from webapp import tracking
from webapp.models import Connection, TrainingJob
from webapp.tests.browser import browser_test, logged_in_page
from webapp.tests.factories import make_job

XSS = "<script>alert(1)</script>"
XSS_ATTR = "'><img src=x onerror=alert(2)>"
ESCAPED = "&lt;script&gt;alert(1)&lt;/script&gt;"


@pytest.fixture
def hostile_site(tmp_path, owner):
    """A real site API whose dataset is named like a script; registered under that name."""
    write_breast_cancer_csv(tmp_path / "good.csv", rows=slice(0, 60))
    (tmp_path / "bad.csv").write_text(f"a,b,target\n1,{XSS},0\n")
    config = write_site_toml(tmp_path, {XSS: "good.csv", XSS_ATTR: "bad.csv"}, token="t0k")
    server = make_api_server(load_site_config(config))
    threading.Thread(target=server.serve_forever, daemon=True).start()
    connection = Connection.objects.create(
        owner=owner, name=XSS, ip="127.0.0.1", port=server.server_address[1], token="t0k"
    )
    job = make_job(owner, sites=[(XSS, XSS)], name=XSS, status="running")
    TrainingJob.objects.filter(pk=job.pk).update(error_message=XSS_ATTR)
    tracker = tracking.ClientTracker(job.pk)
    tracker.failed(next(iter(job.clients_status)), 1, f"site said {XSS}")
    tracker.flush()
    yield connection, job
    server.shutdown()
    server.server_close()


def pages(job: TrainingJob) -> list[str]:
    return ["/datasets/", "/jobs/", f"/jobs/{job.pk}/"]


@pytest.mark.django_db
def test_every_page_escapes_site_and_job_names(hostile_site, owner_client):
    _, job = hostile_site
    for path in pages(job):
        html = owner_client.get(path).content.decode()

        assert XSS not in html, path
        assert "<img src=x" not in html, path
        assert ESCAPED in html, path  # shown, as text


@browser_test
def test_no_page_runs_a_script_from_a_name(hostile_site, live_server, monkeypatch):
    _, job = hostile_site
    dialogs: list[str] = []
    with logged_in_page(live_server, monkeypatch) as page:
        page.on("dialog", lambda dialog: (dialogs.append(dialog.message), dialog.dismiss()))
        for path in pages(job):
            page.goto(f"{live_server.url}{path}")
            page.get_by_text(XSS).first.wait_for(state="visible", timeout=15_000)
            page.wait_for_load_state("networkidle")
        # The dashboard draws clients from the JSON API; a client's details show its reason.
        page.locator("[data-client-id]").first.click()
        page.get_by_text(f"site said {XSS}").first.wait_for(state="visible", timeout=15_000)
        shown = page.locator("body").inner_text()

    assert dialogs == []
    assert XSS in shown
