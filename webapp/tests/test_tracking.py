"""ClientTracker, the tracking writer: what it buffers, when and how it writes (clock injected)."""

import threading
import time
from datetime import UTC, datetime, timedelta

import pytest
from django.db import DatabaseError

from webapp import tracking
from webapp.models import ClientEvent, ClientRoundMetric, TrainingJob
from webapp.tests.factories import make_job

NOW = datetime(2026, 11, 28, 12, 0, tzinfo=UTC)
GOOD = {"accuracy": 0.9, "loss": 0.3, "train_loss": 0.2, "train_samples": 80, "test_samples": 20}


@pytest.mark.django_db
def test_it_never_moves_last_seen_backwards(owner):
    job = make_job(owner)
    client_id = next(iter(job.clients_status))
    tracker = tracking.ClientTracker(job.pk, now=lambda: NOW)

    tracker.seen(client_id, NOW)
    tracker.seen(client_id, NOW - timedelta(seconds=20))  # an older Flower heartbeat
    tracker.flush()

    job.refresh_from_db()
    assert job.clients_status[client_id]["last_seen"] == NOW.isoformat()
    assert tracking.ClientTracker(job.pk).last_seen(client_id) == NOW


@pytest.mark.django_db
def test_it_writes_a_sites_problem_only_when_it_changes(owner):
    job = make_job(owner)
    client_id = next(iter(job.clients_status))
    tracker = tracking.ClientTracker(job.pk)

    tracker.site_problem(client_id, None)
    assert not tracker.flush()  # unchanged: nothing to write
    tracker.site_problem(client_id, "site X: unreachable")
    assert tracker.flush()
    tracker.site_problem(client_id, "site X: unreachable")
    assert not tracker.flush()

    job.refresh_from_db()
    assert job.clients_status[client_id]["site_problem"] == "site X: unreachable"


@pytest.mark.django_db
def test_it_writes_snapshot_history_and_events_in_one_flush(owner):
    job = make_job(owner)
    client_id = next(iter(job.clients_status))
    tracker = tracking.ClientTracker(job.pk, now=lambda: NOW)

    tracker.connected(client_id, 12345678901234567890)
    tracker.training(client_id, 1)
    tracker.reported(client_id, 1, tracking.validate_report(GOOD), response_time=3.21)
    assert tracker.flush() is True

    job.refresh_from_db()
    stored = job.clients_status[client_id]
    assert stored["status"] == "reported"
    assert stored["node_id"] == "12345678901234567890"
    assert stored["accuracy"] == 0.9
    assert stored["response_time"] == 3.21
    assert stored["last_seen"] == NOW.isoformat()
    assert job.tracking_version == 1
    (row,) = ClientRoundMetric.objects.filter(job=job)
    assert (row.client_id, row.round, row.accuracy, row.train_samples) == (client_id, 1, 0.9, 80)
    transitions = list(ClientEvent.objects.filter(job=job).values_list("old_status", "new_status"))
    assert transitions == [
        ("pending", "connected"),
        ("connected", "training"),
        ("training", "reported"),
    ]
    assert tracker.flush() is False  # nothing new


@pytest.mark.django_db
def test_it_rate_limits_flushes_but_not_the_first(owner):
    job = make_job(owner)
    client_id = next(iter(job.clients_status))
    clock = [100.0]
    tracker = tracking.ClientTracker(job.pk, min_flush_interval=0.5, clock=lambda: clock[0])

    tracker.seen(client_id)
    assert tracker.flush_if_due() is True
    tracker.seen(client_id)
    clock[0] += 0.2
    assert tracker.flush_if_due() is False
    clock[0] += 0.4
    assert tracker.flush_if_due() is True


@pytest.mark.django_db
def test_it_keeps_updates_when_the_database_fails_and_writes_them_later(owner, monkeypatch):
    job = make_job(owner)
    client_id = next(iter(job.clients_status))
    tracker = tracking.ClientTracker(job.pk)
    tracker.training(client_id, 1)
    tracker.reported(client_id, 1, tracking.validate_report(GOOD), response_time=1.0)

    def broken(pending, write_seconds):
        raise DatabaseError("disk I/O error")

    with monkeypatch.context() as patch:
        patch.setattr(tracker._store, "write", broken)
        assert tracker.flush() is False  # logged, not raised

    assert tracker.flush() is True
    job.refresh_from_db()
    assert job.clients_status[client_id]["status"] == "reported"
    assert ClientRoundMetric.objects.filter(job=job, round=1).count() == 1


@pytest.mark.django_db
def test_it_ends_clients_with_the_job_but_keeps_failures_visible(owner):
    job = make_job(owner)
    ok, failed = list(job.clients_status)
    tracker = tracking.ClientTracker(job.pk)
    tracker.failed(failed, 1, "Flower error 5: node unavailable")

    tracker.finish_clients(tracking.COMPLETED, 1)
    tracker.flush()

    job.refresh_from_db()
    assert job.clients_status[ok]["status"] == "completed"
    assert job.clients_status[failed]["status"] == "error"
    assert job.clients_status[failed]["status_reason"] == "Flower error 5: node unavailable"


def test_it_records_nothing_when_tracking_is_disabled(owner, settings):
    settings.CLIENT_TRACKING_ENABLED = False
    job = make_job(owner)
    client_id = next(iter(job.clients_status))
    tracker = tracking.ClientTracker(job.pk)

    tracker.training(client_id, 1)
    tracker.reported(client_id, 1, tracking.validate_report(GOOD), response_time=1.0)
    tracker.flush()

    job.refresh_from_db()
    assert job.clients_status[client_id]["status"] == "pending"
    assert job.tracking_version == 0
    assert not ClientRoundMetric.objects.filter(job=job).exists()
    assert not ClientEvent.objects.filter(job=job).exists()
    # The round loop still sees who reported: only the database writes are skipped.
    assert tracker.statuses[client_id] == "reported"


def test_it_stores_the_time_its_writes_have_cost_the_job(owner):
    job = make_job(owner)
    client_id = next(iter(job.clients_status))
    tracker = tracking.ClientTracker(job.pk, min_flush_interval=0)

    tracker.training(client_id, 1)
    tracker.flush()
    first_write = tracker.write_seconds
    tracker.reported(client_id, 1, tracking.validate_report(GOOD), response_time=1.0)
    tracker.flush()

    job.refresh_from_db()
    # Each flush stores the total so far: the benchmark divides it by the job's wall time.
    assert 0 < first_write == job.tracking_write_seconds < tracker.write_seconds


@pytest.mark.django_db(transaction=True)  # the flushing thread has its own connection
def test_it_shows_a_recorded_reply_while_the_round_loop_is_blocked(owner):
    job = make_job(owner, status="running")
    tracker = tracking.ClientTracker(job.pk, min_flush_interval=0.2)
    client_id = tracker.client_ids[0]
    tracker.training(client_id, 1)
    tracker.flush()
    stop_flushing = tracker.flush_in_background()
    try:
        # The loop records a reply, then blocks inside Flower (a 100 MB pull): it never
        # flushes again here. The reply must show anyway (how soon is `make bench`'s to say).
        tracker.reported(client_id, 1, tracking.RoundReport(**GOOD), response_time=2.0)
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            job.refresh_from_db(fields=["clients_status"])
            if job.clients_status[client_id]["status"] == tracking.REPORTED:
                break
            time.sleep(0.02)
    finally:
        stop_flushing()

    assert job.clients_status[client_id]["status"] == tracking.REPORTED
    assert ClientRoundMetric.objects.filter(job=job, client_id=client_id, round=1).exists()


@pytest.mark.django_db(transaction=True)
def test_it_writes_in_the_background_only_when_something_is_buffered(owner):
    job = make_job(owner, status="running")
    tracker = tracking.ClientTracker(job.pk, min_flush_interval=0.01)
    client_id = tracker.client_ids[0]
    results: list[bool] = []  # what each of the background thread's flushes wrote
    idle = threading.Event()
    wrote = threading.Event()
    flush = tracker.flush

    def watched_flush() -> bool:
        written = flush()
        results.append(written)
        if len(results) >= 3:
            idle.set()
        if written:
            wrote.set()
        return written

    tracker.flush = watched_flush
    stop_flushing = tracker.flush_in_background()
    try:
        assert idle.wait(10), "the background thread never flushed"
        while_idle = list(results)
        version_while_idle = TrainingJob.objects.get(pk=job.pk).tracking_version
        tracker.seen(client_id, NOW)  # the positive control: now there is something to write
        assert wrote.wait(10), "the background thread never wrote what was buffered"
    finally:
        stop_flushing()

    assert not any(while_idle) and version_while_idle == job.tracking_version
    job.refresh_from_db()
    assert job.tracking_version == version_while_idle + 1
    assert job.clients_status[client_id]["last_seen"] == NOW.isoformat()
