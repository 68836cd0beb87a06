"""The configuration client_dashboard.html hands its scripts, and the copy of it their
Node tests (webapp/tests/js/) run against."""

import json
from pathlib import Path

import pytest

from webapp.tests.factories import make_job
from webapp.tracking.status import dashboard_groups

JS_TEST_GROUPS = Path(__file__).parent / "js" / "status_groups.json"


def dashboard_config(page: str) -> dict:
    start = page.index('id="dashboard-config"')
    return json.loads(page[page.index(">", start) + 1 : page.index("</script>", start)])


@pytest.mark.django_db
def test_it_sends_the_status_groups_the_scripts_are_tested_with(owner, owner_client):
    job = make_job(owner)

    page = owner_client.get(f"/jobs/{job.pk}/").content.decode()

    groups = dashboard_config(page)["status_groups"]
    assert groups == dashboard_groups()
    assert groups == json.loads(JS_TEST_GROUPS.read_text())
    # the filter's server-rendered text names the same problem statuses
    assert f"Problems ({', '.join(groups['warning'])})" in page
