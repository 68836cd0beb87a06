"""Participation is told, not hidden: how many rounds each client reported and which it
missed, in the clients API, the performance history (a gap), the CSV (a `missed` row), and
the client's end (`dropped`, not `completed`, when it missed the final round)."""

import csv
import io

import pytest

from webapp import tracking
from webapp.tests.factories import make_job, report
from webapp.tracking.writer import round_ranges

pytestmark = pytest.mark.django_db


def play(job, rounds: int, reporting: dict[str, list[int]]) -> tracking.ClientTracker:
    """Rounds 1..rounds, in which each client reports in the rounds listed for it."""
    for server_round in range(1, rounds + 1):
        for client_id, reported in reporting.items():
            if server_round in reported:
                report(job, client_id, server_round, accuracy=0.5 + server_round / 100, loss=0.4)
        tracker = tracking.ClientTracker(job.pk)
        tracker.round_ended(server_round)
        tracker.flush()
    return tracking.ClientTracker(job.pk)


def test_it_gives_each_client_its_rounds_reported_and_missed(owner, owner_client):
    job = make_job(owner, status="running", total_rounds=6)
    barcelona, madrid = list(job.clients_status)
    play(job, 4, {barcelona: [1, 2, 3, 4], madrid: [1, 2]})

    body = owner_client.get(f"/api/jobs/{job.pk}/clients/").json()

    rows = {row["id"]: row for row in body["clients"]}
    assert (rows[barcelona]["rounds_reported"], rows[barcelona]["rounds_missed"]) == (4, [])
    assert (rows[madrid]["rounds_reported"], rows[madrid]["rounds_missed"]) == (2, [3, 4])
    assert rows[madrid]["reported_round"] == 2


def test_a_client_that_missed_the_final_round_ends_dropped_with_its_participation(owner):
    job = make_job(owner, status="running", total_rounds=6)
    barcelona, madrid = list(job.clients_status)
    tracker = play(job, 6, {barcelona: [1, 2, 3, 4, 5, 6], madrid: [1, 2]})
    tracker.connected(madrid, 13, 6, "rejoined")  # back during round 6, too late to train

    tracker.finish_clients(tracking.COMPLETED, 6)
    tracker.flush()

    job.refresh_from_db()
    assert job.clients_status[barcelona]["status"] == "completed"
    assert job.clients_status[madrid]["status"] == "dropped"
    assert job.clients_status[madrid]["status_reason"] == "reported 2 of 6 rounds; missed 3–6"


def test_a_stopped_job_stops_its_clients_whatever_rounds_they_missed(owner):
    job = make_job(owner, status="running", total_rounds=6)
    barcelona, madrid = list(job.clients_status)
    tracker = play(job, 2, {barcelona: [1, 2], madrid: [1]})

    tracker.finish_clients(tracking.STOPPED, 2, "stopped by the user")
    tracker.flush()

    job.refresh_from_db()
    assert {e["status"] for e in job.clients_status.values()} == {"stopped"}


def test_a_missed_round_is_a_gap_in_the_clients_history(owner, owner_client):
    job = make_job(owner, status="running", total_rounds=4)
    barcelona, madrid = list(job.clients_status)
    play(job, 4, {barcelona: [1, 2, 3, 4], madrid: [1, 4]})

    body = owner_client.get(f"/api/jobs/{job.pk}/clients/{madrid}/performance/").json()

    history = body["performance_data"]
    assert history["rounds"] == [1, 2, 3, 4]
    assert history["labels"] == ["Round 1", "Round 2 (missed)", "Round 3 (missed)", "Round 4"]
    assert history["accuracy"] == [0.51, None, None, 0.54]
    assert history["missed"] == [False, True, True, False]


def test_a_missed_round_is_a_missed_row_in_the_csv(owner, owner_client):
    job = make_job(owner, status="running", total_rounds=3)
    barcelona, madrid = list(job.clients_status)
    play(job, 3, {barcelona: [1, 2, 3], madrid: [1]})

    response = owner_client.get(f"/api/jobs/{job.pk}/history.csv")

    rows = list(csv.DictReader(io.StringIO(response.content.decode())))
    madrid_rows = [
        (r["round"], r["status"], r["accuracy"]) for r in rows if r["client_id"] == madrid
    ]
    assert madrid_rows == [("1", "reported", "0.51"), ("2", "missed", ""), ("3", "missed", "")]


def test_it_writes_missed_rounds_as_short_ranges():
    assert round_ranges([3, 4, 5, 6]) == "3–6"
    assert round_ranges([9, 2, 3, 5]) == "2–3, 5, 9"
    assert round_ranges([]) == ""
