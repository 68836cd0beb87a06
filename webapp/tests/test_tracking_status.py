"""How a client's stored status is shown at a moment (webapp.tracking.status), with the clock
given, never read: derive_status, and the property that ties it to next_change_at."""

from datetime import UTC, datetime, timedelta

import pytest
from django.test import override_settings
from hypothesis import given, settings
from hypothesis import strategies as st

from webapp import tracking
from webapp.models import TrainingJob
from webapp.tracking import status as client_status
from webapp.tracking.status import ClientStatus

NOW = datetime(2026, 11, 28, 12, 0, tzinfo=UTC)


def entry(status: str, last_seen: datetime | None, **extra) -> dict:
    return {
        "status": status,
        "last_seen": last_seen.isoformat() if last_seen else None,
        **extra,
    }


def test_it_derives_offline_from_a_stale_last_seen(settings):
    settings.CLIENT_TIMEOUT_THRESHOLD = 30
    stale = entry("training", NOW - timedelta(seconds=31))

    status, reason, _ = tracking.derive_status(stale, NOW, job_finished=False)

    assert status == "offline"
    assert reason == "nothing heard for over 30 s"


def test_it_keeps_a_recently_seen_client_as_it_is(settings):
    settings.CLIENT_TIMEOUT_THRESHOLD = 30

    status, *_ = tracking.derive_status(
        entry("training", NOW - timedelta(seconds=29)), NOW, job_finished=False
    )

    assert status == "training"


@pytest.mark.parametrize("stored", ["pending", "completed", "error", "stopped"])
def test_it_never_derives_offline_for_pending_or_finished_clients(settings, stored):
    settings.CLIENT_TIMEOUT_THRESHOLD = 30

    status, *_ = tracking.derive_status(
        entry(stored, NOW - timedelta(hours=1)), NOW, job_finished=False
    )

    assert status == stored


def test_it_stops_deriving_once_the_job_has_ended(settings):
    status, *_ = tracking.derive_status(
        entry("reported", NOW - timedelta(hours=1)), NOW, job_finished=True
    )

    assert status == "reported"


def test_it_marks_a_straggler_slow_against_the_rounds_median():
    straggler = entry(
        "training",
        NOW - timedelta(seconds=5),
        round_started_at=(NOW - timedelta(seconds=25)).isoformat(),
    )

    status, reason, _ = tracking.derive_status(straggler, NOW, False, [10.0, 12.0])

    assert status == "slow"
    assert reason == "still training after 2x the round's median reply time (11.0 s)"


def test_it_does_not_call_a_client_slow_within_twice_the_median():
    client = entry(
        "training",
        NOW - timedelta(seconds=5),
        round_started_at=(NOW - timedelta(seconds=15)).isoformat(),
    )

    status, *_ = tracking.derive_status(client, NOW, False, [10.0])

    assert status == "training"


def test_it_names_the_sites_problem_when_a_client_goes_offline(settings):
    settings.CLIENT_TIMEOUT_THRESHOLD = 10
    silent = entry(
        "training",
        NOW - timedelta(seconds=12),
        site_problem="site Hospital Madrid: its SuperNode is not running",
    )

    status, reason, _ = tracking.derive_status(silent, NOW, job_finished=False)

    assert status == "offline"
    assert reason == (
        "nothing heard for over 10 s; site Hospital Madrid: its SuperNode is not running"
    )


def test_it_keeps_a_client_the_server_marked_lost_offline_even_if_recently_seen():
    lost = entry("offline", NOW, status_reason="node 7 left the Flower SuperLink")

    assert tracking.derive_status(lost, NOW, job_finished=False) == (
        "offline",
        "node 7 left the Flower SuperLink",
        None,
    )


def test_it_gives_a_slow_client_an_expected_time_from_its_previous_round(settings):
    settings.CLIENT_SLOW_FACTOR = 2.0
    started = NOW - timedelta(seconds=30)
    straggler = entry("training", NOW, round_started_at=started.isoformat(), response_time=42.0)

    status, reason, expected_at = tracking.derive_status(straggler, NOW, False, [10.0])

    assert (status, expected_at) == ("slow", started + timedelta(seconds=42))
    assert reason.endswith("; its previous round took 42 s")


def test_it_drops_the_expected_time_once_it_has_passed(settings):
    settings.CLIENT_SLOW_FACTOR = 2.0
    started = NOW - timedelta(seconds=50)
    straggler = entry("training", NOW, round_started_at=started.isoformat(), response_time=42.0)

    assert tracking.derive_status(straggler, NOW, False, [10.0]) == (
        "slow",
        "still training after 2x the round's median reply time (10.0 s)",
        None,
    )


def test_it_uses_the_configured_slow_factor(settings):
    settings.CLIENT_SLOW_FACTOR = 4.0
    client = entry("training", NOW, round_started_at=(NOW - timedelta(seconds=30)).isoformat())

    assert tracking.derive_status(client, NOW, False, [10.0]).status == "training"
    assert tracking.derive_status(client, NOW, False, [5.0]).status == "slow"


def test_it_applies_the_absolute_slow_rule_when_set(settings):
    client = entry("training", NOW, round_started_at=(NOW - timedelta(seconds=31)).isoformat())

    settings.CLIENT_SLOW_AFTER = 0
    assert tracking.derive_status(client, NOW, False).status == "training"
    settings.CLIENT_SLOW_AFTER = 30
    status, reason, _ = tracking.derive_status(client, NOW, False)
    assert (status, reason) == ("slow", "still training after 30 s")


# --- the groups --------------------------------------------------------------------------


def test_a_site_known_down_is_never_slow_and_its_row_says_what_the_site_reported(settings):
    settings.CLIENT_TIMEOUT_THRESHOLD = 30
    started = NOW - timedelta(seconds=25)
    training = entry(
        "training",
        NOW - timedelta(seconds=5),  # Flower still heartbeats for the dead site's node
        round_started_at=started.isoformat(),
        current_round=1,
        site_problem="site Hospital Madrid: site API at 127.0.0.1:5000 is unreachable",
        site_down=True,
    )

    status, reason, expected_at = tracking.derive_status(
        training, NOW, job_finished=False, round_response_times=[4.0, 5.0]
    )

    assert (status, expected_at) == ("training", None)
    assert reason == "site Hospital Madrid: site API at 127.0.0.1:5000 is unreachable"
    # Offline still follows once nothing has been heard for the threshold.
    status, reason, _ = tracking.derive_status(
        training, NOW + timedelta(seconds=26), job_finished=False, round_response_times=[4.0]
    )
    assert status == "offline"
    assert reason.endswith("; site Hospital Madrid: site API at 127.0.0.1:5000 is unreachable")


def test_the_overview_counts_reported_clients_active_and_healthy_mid_round():
    job = TrainingJob(
        status="running",
        clients_status={
            "a": entry("reported", NOW, current_round=2, accuracy=0.9, reported_round=2),
            "b": entry("reported", NOW, current_round=2, accuracy=0.8, reported_round=2),
            "c": entry("training", NOW, current_round=2, accuracy=0.6, reported_round=1),
        },
    )

    stats = tracking.overview_stats(tracking.client_rows(job, NOW))

    assert (stats["active_clients"], stats["federation_health"]) == (3, 1.0)
    # The averages are round 2's, from its two reporters: c's round-1 figure is left out.
    assert stats["accuracy_round"] == 2
    assert stats["accuracy_clients"] == 2
    assert stats["avg_accuracy"] == pytest.approx(0.85)


def test_a_completed_job_whose_clients_all_completed_is_fully_healthy():
    job = TrainingJob(
        status="completed",
        clients_status={
            "a": entry("completed", NOW, current_round=3, accuracy=0.9, reported_round=3),
            "b": entry("completed", NOW, current_round=3, accuracy=0.7, reported_round=3),
        },
    )

    stats = tracking.overview_stats(tracking.client_rows(job, NOW))

    assert (stats["active_clients"], stats["federation_health"]) == (2, 1.0)


def test_a_dropped_client_is_a_warning_and_not_healthy():
    job = TrainingJob(
        status="completed",
        clients_status={
            "a": entry("completed", NOW, current_round=6, accuracy=0.9, reported_round=6),
            "b": entry("dropped", NOW, current_round=2, accuracy=0.5, reported_round=2),
        },
    )

    stats = tracking.overview_stats(tracking.client_rows(job, NOW))

    assert (stats["warning_clients"], stats["federation_health"]) == (1, 0.5)
    assert (stats["avg_accuracy"], stats["accuracy_round"]) == (0.9, 6)


def test_every_status_but_slow_is_stored_and_has_a_row_in_the_transition_table():
    assert set(client_status.TRANSITIONS) == set(ClientStatus) - {ClientStatus.SLOW}
    assert all(ClientStatus.SLOW not in moves for moves in client_status.TRANSITIONS.values())


def test_nothing_leaves_a_terminal_status_and_an_unusable_one_is_left_by_connecting():
    assert all(not client_status.TRANSITIONS[status] for status in client_status.TERMINAL)
    assert client_status.UNUSABLE <= client_status.CONNECTS_FROM
    assert not client_status.TERMINAL & client_status.CONNECTS_FROM


def test_a_failed_client_is_not_watched_for_liveness_but_may_connect_again():
    assert sorted(client_status.NOT_WATCHED) == ["completed", "dropped", "error", "stopped"]
    assert ClientStatus.CONNECTED in client_status.TRANSITIONS[ClientStatus.ERROR]


def test_the_dashboard_gets_every_group_it_shows_as_lists_of_known_statuses():
    groups = client_status.dashboard_groups()

    assert set(groups) == {"all", "active", "warning", "terminal", "unusable", "training"}
    assert groups["all"] == [status.value for status in ClientStatus]
    assert groups["terminal"] == ["completed", "dropped", "stopped"]
    for name, statuses in groups.items():
        assert set(statuses) <= set(groups["all"]), name


# --- derive_status and next_change_at agree ------------------------------------------------

# Moments on a whole-second grid around NOW, with an occasional microsecond off it: deadlines
# that fall exactly on NOW are where an off-by-one would hide.
offsets = st.one_of(
    st.integers(-120, 120).map(float),
    st.floats(-120, 120, allow_nan=False),
)
moments = st.one_of(st.none(), offsets.map(lambda s: NOW + timedelta(seconds=s)))
iso_moments = moments.map(lambda m: m.isoformat() if m else None)
entries = st.fixed_dictionaries(
    {
        "status": st.sampled_from(sorted(ClientStatus)),
        "last_seen": iso_moments,
        "round_started_at": iso_moments,
        "response_time": st.one_of(st.none(), st.just(0.0), st.floats(0.0, 100.0)),
        "current_round": st.integers(0, 2),
    },
    optional={
        "status_reason": st.sampled_from(["site said no", ""]),
        "site_problem": st.sampled_from(["site X: unreachable", None]),
        "site_down": st.booleans(),
    },
)


@settings(max_examples=400, deadline=None)
@given(
    clients=st.lists(entries, min_size=1, max_size=6),
    job_status=st.sampled_from(["running", "running", "running", "completed"]),
    server_seen_at=moments,
    slow_after=st.sampled_from([0.0, 20.0]),
    fraction=st.floats(0.0, 1.0),
)
def test_no_client_is_shown_otherwise_before_the_next_change(
    clients, job_status, server_seen_at, slow_after, fraction
):
    job = TrainingJob(
        status=job_status,
        clients_status={f"client_{i}": entry for i, entry in enumerate(clients)},
        server_seen_at=server_seen_at,
    )
    with override_settings(
        CLIENT_TIMEOUT_THRESHOLD=30, CLIENT_SLOW_FACTOR=2.0, CLIENT_SLOW_AFTER=slow_after
    ):
        until = tracking.next_change_at(job, NOW)
        shown_now = tracking.client_rows(job, NOW)
        if until is None:
            later = [NOW + timedelta(days=fraction * 30)]
        else:
            assert until >= NOW
            # Derived statuses change only once a deadline has passed: the moment itself
            # still shows what NOW shows.
            later = [NOW + (until - NOW) * fraction, until - timedelta(microseconds=1), until]
        for moment in later:
            if moment >= NOW:
                assert tracking.client_rows(job, moment) == shown_now, moment


def test_it_shows_a_problem_of_a_site_not_down_beside_the_clients_reason():
    problem = (
        "two SuperNodes answer as site Hospital Madrid: node 12 and node 13; the job uses "
        "node 13 and ignores node 12 — stop the extra SuperNode"
    )
    connected = entry(
        "connected", NOW, status_reason="site answered as node 13", site_problem=problem
    )

    status, reason, _ = tracking.derive_status(connected, NOW, job_finished=False)

    assert (status, reason) == ("connected", f"site answered as node 13; {problem}")
