"""Bounded per-job data (docs/production.md "Limits"): what one job, one client and one site
may make the platform store."""

import json
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

from webapp import jobs, sites, tracking
from webapp.api import parsing
from webapp.models import ClientEvent, Connection, TrainingJob
from webapp.tests.factories import make_job

pytestmark = pytest.mark.django_db


def job_request(datasets: int, rounds: int) -> jobs.JobRequest:
    return jobs.JobRequest(
        name="big",
        selections=[(1, f"ds{i}") for i in range(datasets)],
        rounds=rounds,
        local_epochs=1,
        learning_rate=0.01,
        min_clients=1,
    )


@pytest.mark.parametrize(
    ("datasets", "rounds", "error"),
    [
        (jobs.MAX_CLIENTS_PER_JOB + 1, 1, "datasets: at most 1000 per job"),
        (1, parsing.ROUNDS.high + 1, "rounds: must be between 1 and 1000"),
        (
            200,
            501,
            "rounds: 501 rounds × 200 datasets is more than 100,000 client rounds per job",
        ),
    ],
)
def test_it_refuses_a_job_beyond_the_limits(owner, datasets, rounds, error):
    with pytest.raises(jobs.JobValidationError) as refused:
        jobs.create_job(owner=owner, request=job_request(datasets, rounds))

    assert str(refused.value) == error
    assert not TrainingJob.objects.exists()


def test_a_stored_reason_is_cut_to_the_limit(owner):
    job = make_job(owner, status="running")
    client_id = next(iter(job.clients_status))
    tracker = tracking.ClientTracker(job.pk)

    tracker.failed(client_id, 1, "x" * 100_000)
    tracker.flush()

    job.refresh_from_db()
    assert len(job.clients_status[client_id]["status_reason"]) == tracking.MAX_REASON_LENGTH
    assert len(ClientEvent.objects.get(client_id=client_id).message) == 500


def test_a_flapping_client_keeps_only_its_latest_events(owner, monkeypatch):
    monkeypatch.setattr(tracking.store, "MAX_EVENTS_PER_CLIENT", 5)
    job = make_job(owner, status="running")
    flapping, steady = list(job.clients_status)
    tracker = tracking.ClientTracker(job.pk)
    tracker.training(steady, 1)
    for server_round in range(1, 9):
        tracker.lost(flapping, server_round, f"gone in round {server_round}")
        tracker.connected(flapping, node_id=7)
        tracker.flush()

    kept = ClientEvent.objects.filter(client_id=flapping).order_by("created_at", "id")
    assert kept.count() == 5
    assert list(kept.values_list("round", flat=True))[-1] == 0  # the latest: connected again
    assert kept.filter(message="gone in round 8").exists()
    assert not kept.filter(message="gone in round 1").exists()
    assert ClientEvent.objects.filter(client_id=steady).count() == 1


def test_a_new_tracker_counts_the_events_already_stored(owner, monkeypatch):
    monkeypatch.setattr(tracking.store, "MAX_EVENTS_PER_CLIENT", 3)
    job = make_job(owner, status="running")
    client_id = next(iter(job.clients_status))
    for server_round in range(1, 4):
        tracker = tracking.ClientTracker(job.pk)  # e.g. the web's stop, then the ServerApp
        tracker.failed(client_id, server_round, f"round {server_round}")
        tracker.lost(client_id, server_round, f"lost {server_round}")
        tracker.flush()

    messages = list(
        ClientEvent.objects.order_by("created_at", "id").values_list("message", flat=True)
    )
    assert messages == ["lost 2", "round 3", "lost 3"]


@pytest.fixture
def site_answering(owner):
    """A real HTTP server on loopback that answers /datasets with what the test sets."""
    answer: dict = {}

    class Handler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            payload = json.dumps(answer).encode()
            self.send_response(200)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(payload)))
            self.end_headers()
            self.wfile.write(payload)

        def log_message(self, *args) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    connection = Connection.objects.create(
        owner=owner, name="s", ip="127.0.0.1", port=server.server_address[1], token="t"
    )
    yield connection, answer
    server.shutdown()
    server.server_close()


@pytest.mark.parametrize(
    "bad",
    [
        {"name": "n" * 201},
        {"feature_names": ["f"] * 10_001},
        {"feature_names": ["f" * 201]},
        {"class_counts": {str(i): 1 for i in range(1001)}},
        {"target": ""},
    ],
    ids=["long name", "too many features", "long feature name", "too many classes", "no target"],
)
def test_it_refuses_site_metadata_beyond_the_limits(site_answering, bad):
    meta = {
        "name": "ds",
        "ok": True,
        "rows": 10,
        "feature_names": ["a"],
        "target": "y",
        "class_counts": {"0": 5, "1": 5},
        **bad,
    }
    connection, answer = site_answering
    answer["datasets"] = [meta]

    with pytest.raises(sites.SiteError, match="malformed dataset list"):
        sites.fetch_datasets(connection)


def test_a_sites_long_error_report_is_cut(site_answering):
    connection, answer = site_answering
    answer["datasets"] = [{"name": "ds", "ok": False, "error": "e" * 50_000}]

    (meta,) = sites.fetch_datasets(connection)

    assert len(meta["error"]) == sites.MAX_ERROR_LENGTH
