"""The job API for scripts: connections, job creation and its validation, job detail, stop."""

import pytest
from django.test import Client

from webapp.models import Connection, TrainingJob
from webapp.tests.conftest import free_port, register
from webapp.tests.factories import make_job

pytestmark = pytest.mark.django_db


@pytest.fixture
def api(owner_token) -> Client:
    return Client(HTTP_AUTHORIZATION=f"Bearer {owner_token}")


@pytest.fixture
def no_superlink(settings):
    """A SuperLink address where nothing listens."""
    settings.FLOWER_SUPERLINK = f"127.0.0.1:{free_port()}"
    settings.FLOWER_CONTROL_TIMEOUT = 2


def job_body(connections, **overrides) -> dict:
    body = {
        "name": "trial",
        "datasets": [{"connection_id": c.pk, "dataset_name": "breast_cancer"} for c in connections],
        "rounds": 2,
        "local_epochs": 1,
        "learning_rate": 0.01,
        "min_clients": len(connections),
    }
    return {**body, **overrides}


def test_it_lists_connections_with_the_datasets_their_sites_offer(owner, api, site_apis):
    register(owner, site_apis)

    body = api.get("/api/connections/").json()

    assert body["success"] is True
    assert [c["name"] for c in body["connections"]] == [
        "Hospital Barcelona",
        "Hospital Madrid",
        "Hospital Valencia",
    ]
    barcelona = body["connections"][0]
    assert barcelona["reachable"] is True
    (dataset,) = barcelona["datasets"]
    assert dataset["name"] == "breast_cancer"
    assert dataset["rows"] == 250
    assert dataset["features"] == 30
    assert dataset["target"] == "diagnosis"
    assert dataset["class_counts"] == {"0": 70, "1": 180}
    assert "token" not in barcelona


def test_it_reports_an_unreachable_site_without_failing_the_list(owner, api):
    Connection.objects.create(owner=owner, name="Down", ip="127.0.0.1", port=free_port(), token="x")

    (down,) = api.get("/api/connections/").json()["connections"]

    assert down["reachable"] is False
    assert "unreachable" in down["error"]


def test_it_reports_a_wrong_site_token(owner, api, site_apis):
    site = site_apis[0]
    Connection.objects.create(owner=owner, name="X", ip=site.host, port=site.port, token="wrong")

    (conn,) = api.get("/api/connections/").json()["connections"]

    assert conn["reachable"] is False
    assert "rejected the token" in conn["error"]


def test_it_registers_a_connection(api):
    response = api.post(
        "/api/connections/",
        {"name": "Hospital Sevilla", "ip": "10.0.0.5", "port": 5000, "token": "s3cret"},
        content_type="application/json",
    )

    assert response.status_code == 201
    assert response.json()["connection"]["name"] == "Hospital Sevilla"
    assert Connection.objects.get(name="Hospital Sevilla").token == "s3cret"


@pytest.mark.parametrize(
    ("body", "message"),
    [
        ({"name": "", "ip": "h", "port": 1, "token": "t"}, "name: must be a non-empty string"),
        ({"name": "a", "ip": "h", "port": 70000, "token": "t"}, "port: must be between 1"),
        ({"name": "a", "ip": "h", "port": "80", "token": "t"}, "port: must be a whole number"),
        ({"name": "a", "ip": "h", "port": 80}, "token: must be a non-empty string"),
    ],
)
def test_it_rejects_a_bad_connection(api, body, message):
    response = api.post("/api/connections/", body, content_type="application/json")

    assert response.status_code == 400
    assert response.json()["success"] is False
    assert message in response.json()["error"]


@pytest.mark.parametrize(
    ("overrides", "message"),
    [
        ({"rounds": 0}, "rounds: must be between 1 and 1000"),
        ({"rounds": "3"}, "rounds: must be a whole number"),
        ({"local_epochs": 0}, "local_epochs: must be between 1 and 100"),
        ({"learning_rate": -1}, "learning_rate: must be greater than 0"),
        ({"learning_rate": "fast"}, "learning_rate: must be a number"),
        ({"min_clients": 4}, "min_clients: must be between 1 and the number of selected"),
        ({"datasets": []}, "datasets: select at least one dataset"),
        ({"datasets": "all"}, "datasets: must be a list"),
        (
            {"datasets": [{"connection_id": 999999, "dataset_name": "x"}], "min_clients": 1},
            "unknown connection",
        ),
        ({"name": "  "}, "name: must be a non-empty string"),
    ],
)
def test_it_rejects_a_bad_job_with_a_message(owner, api, site_apis, overrides, message):
    connections = register(owner, site_apis)

    response = api.post(
        "/api/jobs/", job_body(connections, **overrides), content_type="application/json"
    )

    assert response.status_code == 400
    assert response.json()["success"] is False
    assert message in response.json()["error"]
    assert not TrainingJob.objects.exists()


def test_it_rejects_a_body_that_is_not_json(api):
    response = api.post("/api/jobs/", "{not json", content_type="application/json")

    assert response.status_code == 400
    assert response.json() == {"success": False, "error": "request body is not valid JSON"}


def test_it_rejects_a_dataset_the_site_does_not_offer(owner, api, site_apis):
    connections = register(owner, site_apis[:1])
    body = job_body(
        connections, datasets=[{"connection_id": connections[0].pk, "dataset_name": "mri"}]
    )

    response = api.post("/api/jobs/", body, content_type="application/json")

    assert response.status_code == 400
    assert response.json()["error"] == (
        "Hospital Barcelona: the site offers no dataset named 'mri'"
    )


def test_it_rejects_another_users_connection(outsider, api, site_apis):
    theirs = register(outsider, site_apis[:1])

    response = api.post("/api/jobs/", job_body(theirs), content_type="application/json")

    assert response.status_code == 400
    assert "unknown connection id" in response.json()["error"]


def test_it_stores_clients_in_the_documented_structure_and_errors_when_superlink_is_down(
    owner, api, site_apis, no_superlink
):
    connections = register(owner, site_apis)

    response = api.post("/api/jobs/", job_body(connections), content_type="application/json")

    assert response.status_code == 503
    body = response.json()
    assert body["success"] is False
    assert "could not start a run on the Flower SuperLink" in body["error"]
    job = TrainingJob.objects.get(pk=body["job_id"])
    assert job.status == "error"
    assert job.error_message == body["error"]
    assert len(job.clients_config) == 3
    for client_id, config in job.clients_config.items():
        assert client_id.startswith("client_")
        assert {"connection_name", "connection_ip", "connection_port", "dataset_name"} <= set(
            config
        )
        status = job.clients_status[client_id]
        assert status["client_id"] == client_id
        assert status["status"] == "pending"
        assert status["current_round"] == 0
        assert status["accuracy"] is None
        assert status["created_at"]
    assert job.model_config["classes"] == ["0", "1"]
    assert len(job.model_config["feature_names"]) == 30


def test_it_gives_a_job_as_json(owner, api):
    job = make_job(owner, total_rounds=5)

    body = api.get(f"/api/jobs/{job.pk}/").json()

    assert body["success"] is True
    assert body["job"]["id"] == job.pk
    assert body["job"]["status"] == "pending"
    assert body["job"]["current_round"] == 0
    assert body["job"]["total_rounds"] == 5


def test_it_stops_a_job_and_its_clients_and_says_who_stopped_it(owner, api, no_superlink):
    job = make_job(owner, status="running")

    response = api.post(f"/api/jobs/{job.pk}/stop/")

    assert response.status_code == 200
    job.refresh_from_db()
    assert job.status == "stopped"
    assert job.error_message == "stopped by alice"
    assert {e["status"] for e in job.clients_status.values()} == {"stopped"}
    assert {e["status_reason"] for e in job.clients_status.values()} == {"job stopped by alice"}


@pytest.mark.parametrize("method,path", [("get", ""), ("post", "stop/")])
def test_it_hides_another_users_job_from_the_job_api(owner, outsider_client, method, path):
    job = make_job(owner)

    response = getattr(outsider_client, method)(f"/api/jobs/{job.pk}/{path}")

    assert response.status_code == 404
    assert response.json()["success"] is False
    job.refresh_from_db()
    assert job.status == "pending"


def test_it_rejects_a_connection_id_beyond_a_database_integer(api):
    response = api.post(
        "/api/jobs/",
        {"name": "x", "datasets": [{"connection_id": 2**70, "dataset_name": "d"}]},
        content_type="application/json",
    )

    assert response.status_code == 400
    assert response.json() == {"success": False, "error": "connection_id: out of range"}


def test_it_rejects_a_nul_character_in_a_name(api):
    response = api.post(
        "/api/connections/",
        {"name": "Hospital\u0000", "ip": "10.0.0.1", "token": "t"},
        content_type="application/json",
    )

    assert response.status_code == 400
    assert response.json() == {"success": False, "error": "name: must not contain NUL characters"}
