"""The pages: datasets.html, start_training, the job list and client_dashboard.html."""

import json

import pytest

from webapp.models import Connection, TrainingJob
from webapp.tests.conftest import free_port, register
from webapp.tests.factories import make_job
from webapp.tracking import status

pytestmark = pytest.mark.django_db


def test_it_shows_every_site_with_its_datasets(owner, owner_client, site_apis):
    register(owner, site_apis)

    page = owner_client.get("/datasets/").content.decode()

    for name, rows in [("Hospital Barcelona", 250), ("Hospital Madrid", 180)]:
        assert name in page
        assert f">{rows}<" in page
    assert page.count('name="datasets"') == 3
    connection = Connection.objects.get(name="Hospital Barcelona")
    assert f'value="{connection.pk}::breast_cancer"' in page


def test_it_shows_an_unreachable_site_and_escapes_its_name(owner, owner_client):
    Connection.objects.create(
        owner=owner, name="<script>alert(1)</script>", ip="127.0.0.1", port=free_port(), token="t"
    )

    page = owner_client.get("/datasets/").content.decode()

    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in page
    assert "<script>alert(1)</script>" not in page
    assert "unreachable" in page


def test_it_starts_training_and_lands_on_the_dashboard(owner, owner_client, site_apis, settings):
    settings.FLOWER_SUPERLINK = f"127.0.0.1:{free_port()}"  # nothing listens: job is `error`
    settings.FLOWER_CONTROL_TIMEOUT = 2
    connections = register(owner, site_apis)

    response = owner_client.post(
        "/jobs/start/",
        {
            "name": "from the form",
            "datasets": [f"{c.pk}::breast_cancer" for c in connections[:2]],
            "rounds": 2,
            "local_epochs": 1,
            "learning_rate": 0.01,
            "min_clients": 2,
        },
    )

    job = TrainingJob.objects.get()
    assert response.status_code == 302
    assert response["Location"] == f"/jobs/{job.pk}/"
    assert len(job.clients_status) == 2
    assert job.status == "error"
    dashboard = owner_client.get(response["Location"]).content.decode()
    assert "could not start a run on the Flower SuperLink" in dashboard


def test_it_keeps_the_site_form_and_says_why_a_site_cannot_be_registered(owner, owner_client):
    port = free_port()  # nothing listens: the page shows the site as unreachable
    Connection.objects.create(owner=owner, name="Hospital Lisboa", ip="127.0.0.1", port=port)
    fields = {"name": "Hospital Lisboa", "ip": "127.0.0.1", "port": port, "token": "t"}

    response = owner_client.post("/connections/", fields)

    assert response.status_code == 400
    page = response.content.decode()
    alert = page.split('<div class="alert alert-danger" role="alert">', 1)[1].split("</div>")[0]
    assert "name: you already have a connection named &#x27;Hospital Lisboa&#x27;" in alert
    assert Connection.objects.filter(owner=owner).count() == 1


def test_it_lists_only_the_users_own_jobs(owner, outsider, owner_client):
    make_job(owner, name="mine")
    make_job(outsider, name="theirs")

    page = owner_client.get("/jobs/").content.decode()

    assert "mine" in page
    assert "theirs" not in page


def dashboard_config(response) -> dict:
    """The configuration the dashboard's script reads from the page."""
    page = response.content.decode()
    start = page.index('id="dashboard-config"')
    return json.loads(page[page.index(">", start) + 1 : page.index("</script>", start)])


def test_it_gives_the_dashboard_its_api_urls(owner, owner_client):
    job = make_job(owner)

    config = dashboard_config(owner_client.get(f"/jobs/{job.pk}/"))

    assert config["clients_url"] == f"/api/jobs/{job.pk}/clients/"
    assert (
        config["performance_url_template"] == f"/api/jobs/{job.pk}/clients/__CLIENT__/performance/"
    )
    assert config["events_url_template"] == f"/api/jobs/{job.pk}/clients/__CLIENT__/events/"
    assert config["history_csv_url"] == f"/api/jobs/{job.pk}/history.csv"
    assert config["poll"]["training_ms"] == 3000
    assert config["poll"]["between_rounds_ms"] == 8000
    assert config["poll"]["ended_ms"] == 30000


def test_it_gives_the_dashboard_the_servers_status_groups(owner, owner_client):
    job = make_job(owner)

    config = dashboard_config(owner_client.get(f"/jobs/{job.pk}/"))

    groups = config["status_groups"]
    assert groups == status.dashboard_groups()
    assert set(groups["all"]) == {s.value for s in status.ClientStatus}
    assert set(groups["active"]) == {s.value for s in status.ACTIVE}
    assert set(groups["warning"]) == {s.value for s in status.WARNING}
