"""GET /api/jobs/<id>/clients/ and /clients/<client_id>/performance/: the dashboard's contract."""

import pytest

from webapp.tests.factories import make_job, report

pytestmark = pytest.mark.django_db

CLIENT_KEYS = {
    "id",
    "name",
    "ip",
    "port",
    "dataset_name",
    "status",
    "current_round",
    "accuracy",
    "loss",
    "train_samples",
    "test_samples",
    "response_time",
    "last_seen",
    "reported_round",
    "rounds_reported",
    "rounds_missed",
    "site_problem",
    "site_down",
}


def test_it_returns_every_client_in_the_documented_shape(owner, owner_client):
    job = make_job(owner)
    first = next(iter(job.clients_status))
    report(job, first, 1, accuracy=0.85, loss=0.4)

    body = owner_client.get(f"/api/jobs/{job.pk}/clients/").json()

    assert body["success"] is True
    assert len(body["clients"]) == 2
    for client in body["clients"]:
        assert client.keys() >= CLIENT_KEYS
    reported = next(c for c in body["clients"] if c["id"] == first)
    assert reported["name"] == "Hospital Barcelona"
    assert reported["status"] == "reported"
    assert reported["accuracy"] == 0.85
    assert reported["current_round"] == 1
    assert reported["response_time"] == 2.5
    pending = next(c for c in body["clients"] if c["id"] != first)
    assert pending["status"] == "pending"
    assert pending["accuracy"] is None
    assert body["overview_stats"] == {
        "total_clients": 2,
        "active_clients": 1,  # a client that has reported waits for the next round
        "warning_clients": 0,
        "avg_accuracy": 0.85,
        "accuracy_round": 1,
        "accuracy_clients": 1,
        "federation_health": 0.5,
        "stragglers": 0,
        "avg_samples": 80.0,
    }


def test_it_serves_real_history_rows_as_performance(owner, owner_client):
    job = make_job(owner)
    client_id = next(iter(job.clients_status))
    report(job, client_id, 1, accuracy=0.7, loss=0.9)
    report(job, client_id, 2, accuracy=0.8, loss=0.5)

    body = owner_client.get(f"/api/jobs/{job.pk}/clients/{client_id}/performance/").json()

    assert body["success"] is True
    assert body["performance_data"]["labels"] == ["Round 1", "Round 2"]
    assert body["performance_data"]["accuracy"] == [0.7, 0.8]
    assert body["performance_data"]["loss"] == [0.9, 0.5]
    assert body["client_info"]["id"] == client_id
    assert body["client_info"]["name"] == "Hospital Barcelona"


def test_it_has_no_history_for_a_client_that_never_reported(owner, owner_client):
    job = make_job(owner)
    client_id = next(iter(job.clients_status))

    body = owner_client.get(f"/api/jobs/{job.pk}/clients/{client_id}/performance/").json()

    assert body["performance_data"]["labels"] == []
    assert body["performance_data"]["accuracy"] == []


@pytest.mark.parametrize("path", ["clients/", "clients/{client}/performance/"])
def test_it_answers_401_json_to_anonymous_callers(client, owner, path):
    job = make_job(owner)
    url = f"/api/jobs/{job.pk}/" + path.format(client=next(iter(job.clients_status)))

    response = client.get(url)

    assert response.status_code == 401
    assert response.json() == {"success": False, "error": "authentication required"}


@pytest.mark.parametrize("path", ["clients/", "clients/{client}/performance/"])
def test_it_hides_another_users_job(owner, outsider_client, path):
    job = make_job(owner)
    url = f"/api/jobs/{job.pk}/" + path.format(client=next(iter(job.clients_status)))

    response = outsider_client.get(url)

    assert response.status_code == 404
    assert response.json() == {"success": False, "error": "job not found"}


def test_it_answers_404_for_an_unknown_client_id(owner, owner_client):
    job = make_job(owner)

    response = owner_client.get(f"/api/jobs/{job.pk}/clients/client_deadbeef/performance/")

    assert response.status_code == 404
    assert response.json()["success"] is False


def test_it_answers_405_json_to_a_write_on_a_read_endpoint(owner, owner_client):
    job = make_job(owner)

    response = owner_client.post(f"/api/jobs/{job.pk}/clients/")

    assert response.status_code == 405
    assert response.json()["success"] is False
