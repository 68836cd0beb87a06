"""Query budgets of the dashboard's endpoints: fixed, whatever the number of clients.

A poller (bearer token) costs one query to authenticate and one to load the job, and an
unchanged poll (If-None-Match) one query in all; a change that adds a query per client (an N+1)
or per request shows up here, not in production.
"""

import pytest
from django.test import Client
from django.utils import timezone

from webapp import tracking
from webapp.tests.factories import make_job

pytestmark = pytest.mark.django_db

REPORT = tracking.RoundReport(
    accuracy=0.9, loss=0.3, train_loss=0.2, train_samples=80, test_samples=20
)


def job_with_history(owner, clients: int, rounds: int = 2):
    """A running job whose clients all reported `rounds` rounds (snapshot, rows, events)."""
    job = make_job(
        owner, [(f"Hospital {i:03d}", "breast_cancer") for i in range(clients)], status="running"
    )
    tracker = tracking.ClientTracker(job.pk, min_flush_interval=0)
    for i, client_id in enumerate(tracker.client_ids):
        tracker.connected(client_id, 1000 + i)
        for server_round in range(1, rounds + 1):
            tracker.training(client_id, server_round)
            tracker.reported(client_id, server_round, REPORT, response_time=1.0 + i % 5)
    tracker.flush()
    return job


@pytest.fixture
def poller(owner_token) -> Client:
    client = Client(HTTP_AUTHORIZATION=f"Bearer {owner_token}")
    client.get("/api/jobs/")  # the token's first use writes last_used_at: not a poll's cost
    return client


ENDPOINTS = [
    # (path under /api/jobs/<id>/, queries: token, job, then the endpoint's own)
    ("clients/", 3),  # + the clients' snapshot
    ("clients/{client_id}/performance/", 4),  # + the snapshot, the client's history
    ("", 2),
]


@pytest.mark.parametrize(("path", "queries"), ENDPOINTS)
@pytest.mark.parametrize("clients", [3, 200])
def test_it_answers_dashboard_endpoints_in_a_fixed_number_of_queries(
    owner, poller, django_assert_num_queries, path, queries, clients
):
    job = job_with_history(owner, clients)
    client_id = next(iter(job.clients_status))
    url = f"/api/jobs/{job.pk}/" + path.format(client_id=client_id)

    with django_assert_num_queries(queries):
        response = poller.get(url)

    assert response.status_code == 200, response.content
    if path == "clients/":
        assert len(response.json()["clients"]) == clients


@pytest.mark.parametrize("clients", [3, 200])
def test_it_answers_an_unchanged_poll_in_one_query(
    owner, poller, django_assert_num_queries, clients
):
    job = job_with_history(owner, clients)
    url = f"/api/jobs/{job.pk}/clients/"
    tag = poller.get(url)["ETag"]

    with django_assert_num_queries(1):  # the token, the job's owner and version together
        response = poller.get(url, headers={"If-None-Match": tag})

    assert response.status_code == 304


def test_it_serves_repeated_polls_of_a_snapshot_without_reading_it_again(
    owner, poller, django_assert_num_queries, monkeypatch
):
    job = job_with_history(owner, 200)
    url = f"/api/jobs/{job.pk}/clients/"
    now = timezone.now()
    monkeypatch.setattr(timezone, "now", lambda: now)
    first = poller.get(url)

    with django_assert_num_queries(2):  # token, job: the snapshot is already rendered
        again = poller.get(url)

    assert again.status_code == 200
    assert again.content == first.content


def test_it_shows_a_tracking_write_on_the_next_poll(owner, poller, monkeypatch):
    job = job_with_history(owner, 3)
    url = f"/api/jobs/{job.pk}/clients/"
    now = timezone.now()
    monkeypatch.setattr(timezone, "now", lambda: now)
    client_id = next(iter(job.clients_status))
    poller.get(url)

    tracker = tracking.ClientTracker(job.pk)
    tracker.failed(client_id, 2, "site crashed")
    tracker.flush()

    rows = {row["id"]: row for row in poller.get(url).json()["clients"]}
    assert rows[client_id]["status"] == "error"
    assert rows[client_id]["status_reason"] == "site crashed"
