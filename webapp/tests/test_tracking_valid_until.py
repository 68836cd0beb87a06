"""tracking.next_change_at: how long a snapshot's derived statuses stay true (the property
that ties it to derive_status is in test_tracking_status.py)."""

from datetime import UTC, datetime, timedelta

import pytest

from webapp import tracking
from webapp.models import TrainingJob
from webapp.tests.factories import make_job

pytestmark = pytest.mark.django_db

T0 = datetime(2026, 1, 1, 12, 0, 0, tzinfo=UTC)


def tracker_at(job: TrainingJob, at: datetime) -> tracking.ClientTracker:
    return tracking.ClientTracker(job.pk, now=lambda: at)


def connected_at(job: TrainingJob, client_id: str, node_id: int, at: datetime) -> None:
    t = tracker_at(job, at)
    t.connected(client_id, node_id)
    t.flush()


def reload(job: TrainingJob) -> TrainingJob:
    return TrainingJob.objects.get(pk=job.pk)


def three_sites(owner, **fields) -> TrainingJob:
    return make_job(
        owner,
        [("Hospital A", "d"), ("Hospital B", "d"), ("Hospital C", "d")],
        **fields,
    )


# Two clients seen `second_seen` seconds apart, asked at `now`; the threshold is 30 s.
@pytest.mark.parametrize(
    ("second_seen", "now", "until"),
    [
        pytest.param(5, 10, 30, id="the-least-recently-seen-client-turns-offline-first"),
        pytest.param(100, 110, 130, id="it-skips-clients-already-offline"),
    ],
)
def test_it_is_when_the_least_recently_seen_online_client_would_turn_offline(
    owner, settings, second_seen, now, until
):
    settings.CLIENT_TIMEOUT_THRESHOLD = 30
    job = make_job(owner, status="running")
    first, second = list(job.clients_status)
    connected_at(job, first, 1, T0)
    connected_at(job, second, 2, T0 + timedelta(seconds=second_seen))

    next_change = tracking.next_change_at(reload(job), T0 + timedelta(seconds=now))

    assert next_change == T0 + timedelta(seconds=until)


def test_it_is_when_a_training_client_would_become_a_straggler(owner, settings):
    settings.CLIENT_TIMEOUT_THRESHOLD = 600
    job = three_sites(owner, status="running")
    fast, other, laggard = list(job.clients_status)
    t = tracker_at(job, T0)
    for client_id in (fast, other, laggard):
        t.connected(client_id, 1)
        t.training(client_id, 1)
    report = tracking.RoundReport(0.8, 0.3, 0.3, 10, 5)
    t.reported(fast, 1, report, response_time=4.0)
    t.reported(other, 1, report, response_time=6.0)
    t.flush()

    until = tracking.next_change_at(reload(job), T0 + timedelta(seconds=1))

    # median of the replies (5 s) × CLIENT_SLOW_FACTOR after the round started
    assert until == T0 + timedelta(seconds=settings.CLIENT_SLOW_FACTOR * 5.0)
    rows = tracking.client_rows(reload(job), until + timedelta(seconds=1))
    assert next(r for r in rows if r["id"] == laggard)["status"] == tracking.SLOW


def test_it_is_when_a_slow_clients_expected_reply_time_passes(owner, settings):
    settings.CLIENT_TIMEOUT_THRESHOLD = 600
    settings.CLIENT_SLOW_FACTOR = 2.0
    job = three_sites(owner, status="running")
    fast, other, laggard = list(job.clients_status)
    t = tracker_at(job, T0 - timedelta(seconds=60))
    report = tracking.RoundReport(0.8, 0.3, 0.3, 10, 5)
    for client_id, seconds in ((fast, 4.0), (other, 6.0), (laggard, 30.0)):
        t.training(client_id, 1)
        t.reported(client_id, 1, report, response_time=seconds)
    t.flush()
    t = tracker_at(job, T0)
    for client_id in (fast, other, laggard):
        t.training(client_id, 2)
    t.reported(fast, 2, report, response_time=4.0)
    t.reported(other, 2, report, response_time=6.0)
    t.flush()
    slow_at = T0 + timedelta(seconds=11)  # past 2x the round's median (5 s)

    until = tracking.next_change_at(reload(job), slow_at)

    assert until == T0 + timedelta(seconds=30)  # its previous round's time
    rows = {r["id"]: r for r in tracking.client_rows(reload(job), slow_at)}
    assert rows[laggard]["expected_at"] == until.isoformat()
    after = {r["id"]: r for r in tracking.client_rows(reload(job), until + timedelta(seconds=1))}
    assert (after[laggard]["status"], after[laggard]["expected_at"]) == ("slow", None)


@pytest.mark.parametrize("status", ["completed", "failed", "stopped", "error"])
def test_it_has_no_end_once_the_job_has_ended(owner, status):
    job = make_job(owner, status=status)
    connected_at(job, next(iter(job.clients_status)), 1, T0)

    assert tracking.next_change_at(reload(job), T0) is None


def test_it_has_no_end_while_every_client_is_pending(owner):
    job = make_job(owner, status="running")

    assert tracking.next_change_at(job, T0) is None
