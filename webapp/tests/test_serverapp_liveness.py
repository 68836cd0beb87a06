"""The liveness monitor's two sources, each alone: a site's health (asked by the prober's
thread) and Flower's heartbeats (read by the round loop). Time is a fake clock."""

import pytest
from flwr.common.constant import HEARTBEAT_PATIENCE
from flwr.proto.node_pb2 import NodeInfo  # pylint: disable=E0611

from webapp import sites
from webapp.models import TrainingJob
from webapp.serverapp.liveness import LivenessMonitor
from webapp.serverapp.nodes import ClientSlot
from webapp.tests.factories import make_job
from webapp.tests.fake_grid import HEARTBEAT_INTERVAL, FakeClock
from webapp.tracking import ClientTracker

pytestmark = pytest.mark.django_db

THRESHOLD = 10
ROUND_TIMEOUT = 60
DOWN = sites.Health("site Hospital Madrid: connection refused", down=True)


class StubProber:
    def __init__(self) -> None:
        self.health: dict[int, tuple] = {}


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock()


@pytest.fixture
def job(owner) -> TrainingJob:
    return make_job(owner, [("Hospital Madrid", "breast_cancer")])


@pytest.fixture
def setup(job, clock):
    tracker = ClientTracker(job.pk, clock=clock.monotonic, now=clock.now)
    [(client_id, config)] = job.clients_config.items()
    client = ClientSlot(
        client_id=client_id,
        connection_id=config["connection_id"],
        site_name="Hospital Madrid",
        site_key="k",
        dataset_name="breast_cancer",
        node_id=12,
    )
    tracker.connected(client_id, 12)
    prober = StubProber()
    sent: list[tuple[str, dict]] = []
    monitor = LivenessMonitor(
        tracker,
        {client_id: client},
        min_clients=1,
        timeout_threshold=THRESHOLD,
        round_timeout=ROUND_TIMEOUT,
        clock=clock,
        alert=lambda event, **details: sent.append((event, details)),
        prober=prober,  # type: ignore[arg-type]
    )
    return monitor, tracker, prober, client, sent


def node_heartbeating_at(clock: FakeClock) -> NodeInfo:
    return NodeInfo(
        node_id=12,
        online_until=clock.now().timestamp() + HEARTBEAT_PATIENCE * HEARTBEAT_INTERVAL,
        heartbeat_interval=HEARTBEAT_INTERVAL,
    )


def test_a_site_known_down_is_lost_once_its_heartbeats_are_older_than_the_threshold(
    setup, clock, job
):
    monitor, tracker, prober, client, sent = setup
    monitor.refresh([node_heartbeating_at(clock)])
    prober.health[client.connection_id] = (clock.now(), DOWN)

    clock.sleep(THRESHOLD - 1)
    assert monitor.check_heartbeats(1) == []
    assert tracker.statuses[client.client_id] == "connected"

    clock.sleep(2)
    assert monitor.check_heartbeats(1) == [client]
    tracker.flush()

    job.refresh_from_db()
    entry = job.clients_status[client.client_id]
    assert entry["status"] == "offline"
    assert entry["status_reason"] == (
        "site Hospital Madrid: connection refused; no heartbeat or reply for 11 s"
    )
    assert entry["site_problem"] == DOWN.problem
    assert [event for event, _ in sent] == ["client_offline", "min_clients_at_risk"]


def test_a_healthy_site_is_seen_when_it_was_asked_and_the_server_heartbeats(setup, clock, job):
    monitor, tracker, prober, client, _ = setup
    monitor.refresh([node_heartbeating_at(clock)])
    clock.sleep(5)
    asked_at = clock.now()
    prober.health[client.connection_id] = (asked_at, sites.Health())

    monitor.sites_alive()
    tracker.flush()

    job.refresh_from_db()
    assert tracker.last_seen(client.client_id) == asked_at
    assert job.server_seen_at == asked_at


def test_a_round_loop_stuck_longer_than_a_round_stops_the_servers_heartbeat(setup, clock, job):
    monitor, tracker, prober, client, _ = setup
    monitor.refresh([node_heartbeating_at(clock)])
    before = job.server_seen_at  # none yet: the job has not been marked running

    clock.sleep(ROUND_TIMEOUT + 1)  # no beat() from the round loop meanwhile
    prober.health[client.connection_id] = (clock.now(), sites.Health())
    monitor.sites_alive()
    tracker.flush()

    job.refresh_from_db()
    assert job.server_seen_at == before
    assert tracker.last_seen(client.client_id) == clock.now()  # the site is still seen

    monitor.beat()
    monitor.sites_alive()
    tracker.flush()
    job.refresh_from_db()
    assert job.server_seen_at == clock.now()


STOPPED = sites.Health(
    "site Hospital Madrid: its SuperNode is not running", down=True, supernode_stopped=True
)


def test_a_site_known_down_is_flagged_on_its_row_as_soon_as_it_is_probed(setup, clock, job):
    monitor, tracker, prober, client, _ = setup
    monitor.refresh([node_heartbeating_at(clock)])
    tracker.training(client.client_id, 1)
    prober.health[client.connection_id] = (clock.now(), DOWN)

    monitor.sites_alive()  # the prober's thread, right after asking: no node check needed
    tracker.flush()

    job.refresh_from_db()
    entry = job.clients_status[client.client_id]
    assert (entry["site_problem"], entry["site_down"]) == (DOWN.problem, True)
    assert entry["status"] == "training"  # offline only once the threshold has passed

    prober.health[client.connection_id] = (clock.now(), sites.Health())
    monitor.sites_alive()
    tracker.flush()

    job.refresh_from_db()
    entry = job.clients_status[client.client_id]
    assert (entry["site_problem"], entry["site_down"]) == (None, False)


def test_a_supernode_that_stopped_mid_round_loses_the_clients_round_at_once(setup, clock, job):
    monitor, tracker, prober, client, sent = setup
    monitor.found(client.client_id)
    monitor.refresh([node_heartbeating_at(clock)])  # Flower still lists the dead node
    tracker.training(client.client_id, 6)
    clock.sleep(1)
    prober.health[client.connection_id] = (clock.now(), STOPPED)

    assert monitor.check_heartbeats(6, in_round={client.client_id}) == [client]
    tracker.flush()

    job.refresh_from_db()
    entry = job.clients_status[client.client_id]
    assert entry["status"] == "offline"
    assert entry["status_reason"] == (
        "site Hospital Madrid: its SuperNode is not running; its work in round 6 is lost"
    )
    assert [event for event, _ in sent][0] == "client_offline"


def test_a_stopped_supernode_between_rounds_or_before_a_rejoin_loses_nothing(setup, clock, job):
    monitor, tracker, prober, client, _ = setup
    monitor.refresh([node_heartbeating_at(clock)])
    prober.health[client.connection_id] = (clock.now(), STOPPED)

    assert monitor.check_heartbeats(1) == []  # not in a round: nothing of its work is lost
    clock.sleep(1)
    monitor.found(client.client_id)  # its site identified a new node since it was asked
    tracker.training(client.client_id, 2)
    assert monitor.check_heartbeats(2, in_round={client.client_id}) == []
    assert tracker.statuses[client.client_id] == "training"
