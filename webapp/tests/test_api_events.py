"""GET /api/jobs/<id>/clients/<client_id>/events/: a client's timeline."""

from datetime import UTC, datetime, timedelta

import pytest

from webapp import tracking
from webapp.api import client_endpoints
from webapp.tests.factories import make_job

pytestmark = pytest.mark.django_db

T0 = datetime(2026, 1, 1, 12, 0, 0, tzinfo=UTC)


def events_url(job, client_id: str) -> str:
    return f"/api/jobs/{job.pk}/clients/{client_id}/events/"


def test_it_lists_a_clients_events_oldest_first(owner, owner_client):
    job = make_job(owner, status="running")
    client_id, other = list(job.clients_status)
    times = iter(T0 + timedelta(seconds=s) for s in range(100))
    tracker = tracking.ClientTracker(job.pk, now=lambda: next(times))
    tracker.connected(client_id, 42)
    tracker.connected(other, 43)
    tracker.training(client_id, 1)
    tracker.failed(client_id, 1, "train_samples is 0: the client trained on nothing")
    tracker.flush()

    body = owner_client.get(events_url(job, client_id)).json()

    assert body["success"] is True
    assert body["truncated"] is False
    assert [(e["round"], e["old_status"], e["new_status"]) for e in body["events"]] == [
        (0, "pending", "connected"),
        (1, "connected", "training"),
        (1, "training", "error"),
    ]
    assert body["events"][0]["message"] == "site answered as node 42"
    assert body["events"][-1]["message"] == "train_samples is 0: the client trained on nothing"
    assert datetime.fromisoformat(body["events"][0]["time"]) < datetime.fromisoformat(
        body["events"][-1]["time"]
    )


def test_it_keeps_only_the_latest_events(owner, owner_client, monkeypatch):
    monkeypatch.setattr(client_endpoints, "MAX_EVENTS", 2)
    job = make_job(owner, status="running")
    client_id = next(iter(job.clients_status))
    times = iter(T0 + timedelta(seconds=s) for s in range(100))
    tracker = tracking.ClientTracker(job.pk, now=lambda: next(times))
    tracker.connected(client_id, 42)
    tracker.training(client_id, 1)
    tracker.failed(client_id, 1, "lost")
    tracker.connected(client_id, 42, 2)
    tracker.flush()

    body = owner_client.get(events_url(job, client_id)).json()

    assert body["truncated"] is True
    assert [(e["round"], e["new_status"]) for e in body["events"]] == [
        (1, "error"),
        (2, "connected"),
    ]


def test_it_answers_404_for_a_client_not_in_the_job(owner, owner_client):
    job = make_job(owner)

    response = owner_client.get(events_url(job, "client_deadbeef"))

    assert response.status_code == 404
    assert response.json() == {"success": False, "error": "client not found in this job"}


def test_it_hides_another_users_job(owner, outsider_client):
    job = make_job(owner)

    response = outsider_client.get(events_url(job, next(iter(job.clients_status))))

    assert response.status_code == 404
    assert response.json() == {"success": False, "error": "job not found"}


def test_it_answers_401_json_to_anonymous_callers(client, owner):
    job = make_job(owner)

    response = client.get(events_url(job, next(iter(job.clients_status))))

    assert response.status_code == 401
