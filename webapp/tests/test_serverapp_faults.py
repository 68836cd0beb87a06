"""A whole job's ServerApp driven in-process: a fake Grid and a clock that moves only when the
round loop sleeps, so each fault case takes a moment and nothing is left to chance. What is
checked is what a user sees: statuses and their reasons, round history, alerts, the job's end.
"""

from pathlib import Path

import pytest
import torch
from flwr.app import Context, Error, RecordDict
from flwr.common.constant import ErrorCode

from clients.protocol import Record, TrainConfig
from clients.tests.helpers import act_as_server_app
from webapp import alerts
from webapp.models import ClientEvent, ClientRoundMetric, TrainingJob
from webapp.serverapp.job import start_flower_server
from webapp.tests.factories import make_job
from webapp.tests.fake_grid import SUPERLINK_NODE, FakeClock, FakeGrid, FakeSite

pytestmark = pytest.mark.django_db(transaction=True)

BARCELONA, MADRID = "Hospital Barcelona", "Hospital Madrid"
ROUND_TIMEOUT = 20
THRESHOLD = 10


@pytest.fixture(autouse=True)
def job_settings(settings, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    settings.SITE_HEALTH_PROBES = False  # no site APIs here: Flower's node list decides
    settings.JOB_NODE_WAIT_TIMEOUT = 30
    settings.JOB_ROUND_TIMEOUT = ROUND_TIMEOUT
    settings.CLIENT_TIMEOUT_THRESHOLD = THRESHOLD
    settings.MODEL_DIR = tmp_path / "models"
    act_as_server_app(monkeypatch)


@pytest.fixture
def sent_alerts(monkeypatch: pytest.MonkeyPatch) -> list[dict]:
    sent: list[dict] = []

    def record(url: str, event: str, job_id: int, job_name: str, **details) -> None:
        sent.append({"event": event, **details})

    monkeypatch.setattr(alerts, "send", record)
    return sent


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock()


@pytest.fixture
def barcelona() -> FakeSite:
    return FakeSite(BARCELONA, token=BARCELONA)  # make_job's connections hold the name


@pytest.fixture
def madrid() -> FakeSite:
    return FakeSite(MADRID, token=MADRID)


@pytest.fixture
def grid(clock: FakeClock, barcelona: FakeSite, madrid: FakeSite) -> FakeGrid:
    """Both sites' SuperNodes have joined before the job starts: Barcelona is node 11, Madrid
    node 12. A test changes how a site answers through its FakeSite, read at each message."""
    grid = FakeGrid(clock)
    grid.start_node(11, barcelona)
    grid.start_node(12, madrid)
    return grid


def run_job(job: TrainingJob, grid: FakeGrid, clock: FakeClock) -> TrainingJob:
    context = Context(
        run_id=1, node_id=0, node_config={}, state=RecordDict(), run_config={"job-id": job.pk}
    )
    start_flower_server(grid, context, clock=clock)
    job.refresh_from_db()
    return job


def client_of(job: TrainingJob, site: str) -> tuple[str, dict]:
    return next(
        (cid, entry)
        for cid, entry in job.clients_status.items()
        if entry["connection_name"] == site
    )


def rounds_reported(job: TrainingJob, client_id: str) -> list[int]:
    return list(
        ClientRoundMetric.objects.filter(job=job, client_id=client_id)
        .order_by("round")
        .values_list("round", flat=True)
    )


def timeline(job: TrainingJob, client_id: str) -> list[tuple[str, str, str]]:
    return [
        (e.old_status, e.new_status, e.message)
        for e in ClientEvent.objects.filter(job=job, client_id=client_id).order_by("pk")
    ]


def trains_sent_to(grid: FakeGrid, node_id: int) -> int:
    return sum(1 for node, kind in grid.pushed_to if node == node_id and kind == "train")


def test_it_trains_only_the_jobs_clients_one_message_each_and_saves_the_model(
    owner, grid, clock, settings
):
    job = make_job(
        owner,
        [(BARCELONA, "breast_cancer"), (BARCELONA, "heart"), (MADRID, "breast_cancer")],
        total_rounds=2,
    )
    grid.start_node(99, FakeSite("Another job's site", token="someone else"))

    job = run_job(job, grid, clock)

    assert job.status == "completed", job.error_message
    assert job.current_round == 2
    for client_id, entry in job.clients_status.items():
        assert entry["status"] == "completed"
        assert rounds_reported(job, client_id) == [1, 2]
    # A site with two datasets is two clients on one node; another job's node trains nothing.
    assert (trains_sent_to(grid, 11), trains_sent_to(grid, 12), trains_sent_to(grid, 99)) == (
        4,
        2,
        0,
    )
    configs = [
        TrainConfig.from_config(m.content[Record.CONFIG])
        for m in grid.pushed.values()
        if m.metadata.message_type == "train" and m.metadata.dst_node_id == 11
    ]
    assert sorted(c.dataset_name for c in configs) == ["breast_cancer"] * 2 + ["heart"] * 2
    assert {c.client_id for c in configs} == {
        cid for cid, e in job.clients_status.items() if e["connection_name"] == BARCELONA
    }
    saved = torch.load(Path(settings.MODEL_DIR) / f"job_{job.pk}.pt")
    assert saved["rounds"] == 2
    assert job.model_file.endswith(f"job_{job.pk}.pt")


def test_a_site_whose_supernode_restarted_rejoins_as_a_new_node(
    owner, grid, clock, madrid, sent_alerts
):
    job = make_job(owner, total_rounds=4)
    grid.at(1.0, lambda: grid.kill(12))
    grid.at(4.0, lambda: grid.start_node(13, madrid))

    job = run_job(job, grid, clock)

    assert job.status == "completed", job.error_message
    client_id, entry = client_of(job, MADRID)
    assert (entry["status"], entry["node_id"]) == ("completed", "13")
    events = timeline(job, client_id)
    assert ("training", "offline") in [e[:2] for e in events]
    assert "node 12 left the Flower SuperLink (missed heartbeats)" in events[2][2]
    rejoined = [e for e in events if e[:2] == ("offline", "connected")]
    assert len(rejoined) == 1, events
    assert rejoined[0][2] == (
        f"site {MADRID} rejoined as node 13 (was node 12); it trains again from the next round"
    )
    reported = rounds_reported(job, client_id)
    assert reported and min(reported) > 1
    assert reported == list(range(min(reported), 5))  # every round after it rejoined
    offline = next(a for a in sent_alerts if a["event"] == alerts.CLIENT_OFFLINE)
    assert (offline["site"], offline["round"]) == (MADRID, 1)


def test_a_new_node_for_a_site_replaces_its_old_node_even_before_that_one_is_dropped(
    owner, grid, clock, madrid
):
    job = make_job(owner, total_rounds=3)
    grid.at(1.0, lambda: grid.freeze(12))
    grid.at(1.0, lambda: grid.start_node(13, madrid))

    job = run_job(job, grid, clock)

    assert job.status == "completed", job.error_message
    client_id, entry = client_of(job, MADRID)
    assert (entry["status"], entry["node_id"]) == ("completed", "13")
    events = timeline(job, client_id)
    assert (
        "training",
        "offline",
        "node 13 answered as this site in place of node 12 (its SuperNode restarted, or a "
        "second one runs with this site's token); its work in round 1 is lost",
    ) in events
    assert [e[2] for e in events if e[:2] == ("offline", "connected")] == [
        f"site {MADRID} rejoined as node 13 (was node 12); it trains again from the next round"
    ]
    assert rounds_reported(job, client_id) == [2, 3]
    assert clock.elapsed < ROUND_TIMEOUT  # round 1 stopped waiting for the replaced node


SECOND_SUPERNODE = (
    f"two SuperNodes answer as site {MADRID}: node 12 and node 13; the job uses node 13 and "
    "ignores node 12 — stop the extra SuperNode"
)


def test_it_keeps_the_newer_node_and_says_so_when_two_supernodes_answer_as_one_site(
    owner, grid, clock, madrid
):
    job = make_job(owner, total_rounds=3)
    # A second SuperNode runs with Madrid's token: both heartbeat and answer as Madrid, node
    # 13 last.
    grid.start_node(13, madrid)

    job = run_job(job, grid, clock)

    assert job.status == "completed", job.error_message
    client_id, entry = client_of(job, MADRID)
    assert entry["node_id"] == "13"
    notes = [e for e in timeline(job, client_id) if e[2] == SECOND_SUPERNODE]
    assert len(notes) == 1, timeline(job, client_id)
    assert notes[0][0] == notes[0][1]  # a note: the client's status is left as it was
    assert (entry["site_problem"], entry["site_down"]) == (SECOND_SUPERNODE, False)
    assert trains_sent_to(grid, 12) == 0
    assert trains_sent_to(grid, 13) == 3
    assert rounds_reported(job, client_id) == [1, 2, 3]
    _, survivor = client_of(job, BARCELONA)
    assert survivor.get("site_problem") is None


def test_it_stops_warning_of_a_second_supernode_once_it_has_left(owner, grid, clock, madrid):
    job = make_job(owner, total_rounds=4)
    grid.start_node(13, madrid)
    grid.at(5.0, lambda: grid.kill(12))  # the user stopped the extra SuperNode

    job = run_job(job, grid, clock)

    assert job.status == "completed", job.error_message
    client_id, entry = client_of(job, MADRID)
    assert [e[2] for e in timeline(job, client_id)].count(SECOND_SUPERNODE) == 1
    assert entry.get("site_problem") is None
    assert rounds_reported(job, client_id) == [1, 2, 3, 4]


def test_it_takes_a_restarted_supernode_for_a_restart_not_for_a_second_one(
    owner, grid, clock, madrid
):
    job = make_job(owner, total_rounds=4)
    grid.at(1.0, lambda: grid.freeze(12))  # dead, yet listed until its heartbeats lapse
    grid.at(1.0, lambda: grid.start_node(13, madrid))
    grid.at(9.0, lambda: grid.kill(12))  # Flower drops it at last

    job = run_job(job, grid, clock)

    assert job.status == "completed", job.error_message
    client_id, entry = client_of(job, MADRID)
    events = timeline(job, client_id)
    assert (
        "training",
        "offline",
        "node 13 answered as this site in place of node 12 (its SuperNode restarted, or a "
        "second one runs with this site's token); its work in round 1 is lost",
    ) in events
    assert not [e for e in events if "two SuperNodes" in e[2]], events
    assert entry.get("site_problem") is None
    assert rounds_reported(job, client_id) == [2, 3, 4]


def test_a_healed_partition_brings_the_same_node_back(owner, grid, clock, sent_alerts):
    job = make_job(owner, total_rounds=4)
    grid.at(1.0, lambda: grid.kill(12))
    grid.at(4.0, lambda: grid.heal(12))

    job = run_job(job, grid, clock)

    assert job.status == "completed", job.error_message
    client_id, entry = client_of(job, MADRID)
    assert (entry["status"], entry["node_id"]) == ("completed", "12")
    moves = [e for e in timeline(job, client_id) if e[:2] == ("offline", "connected")]
    assert [m[2] for m in moves] == ["node 12 is reachable again"]
    reported = rounds_reported(job, client_id)
    assert reported and min(reported) > 1
    assert reported == list(range(min(reported), 5))
    assert [a["event"] for a in sent_alerts].count(alerts.CLIENT_OFFLINE) == 1


def test_an_error_reply_from_the_superlink_is_pinned_on_the_client_it_answers(
    owner, grid, clock, madrid
):
    job = make_job(owner, total_rounds=3)
    madrid.train = lambda message, message_id, node_id: (
        1.0,
        grid.reply(
            message,
            message_id,
            src_node_id=SUPERLINK_NODE,
            error=Error(ErrorCode.CLIENT_APP_RAISED_EXCEPTION, "ClientApp raised ValueError"),
        ),
    )

    job = run_job(job, grid, clock)

    assert job.status == "completed", job.error_message
    client_id, entry = client_of(job, MADRID)
    assert entry["status"] == "error"
    assert entry["status_reason"] == (
        f"Flower error {ErrorCode.CLIENT_APP_RAISED_EXCEPTION}: ClientApp raised ValueError"
    )
    assert ("training", "error") in [e[:2] for e in timeline(job, client_id)]
    assert trains_sent_to(grid, 12) == 1  # a failed client is not sent more rounds
    assert client_of(job, BARCELONA)[1]["status"] == "completed"


def test_an_unreachable_node_reply_marks_the_client_offline_not_failed(
    owner, grid, clock, madrid, sent_alerts
):
    job = make_job(owner, total_rounds=2)

    def frozen(message, message_id, node_id):
        # Flower gives up on a frozen node: it leaves the node list as its error reply comes.
        grid.at(clock.elapsed + 1.0, lambda: grid.kill(node_id))
        error = Error(ErrorCode.NODE_UNAVAILABLE, "Node unavailable")
        return 1.0, grid.reply(message, message_id, src_node_id=SUPERLINK_NODE, error=error)

    madrid.train = frozen

    job = run_job(job, grid, clock)

    assert job.status == "completed", job.error_message
    _, entry = client_of(job, MADRID)
    assert entry["status"] == "offline"
    assert entry["status_reason"] == ("Flower could not reach node 12 in round 1: Node unavailable")
    assert [a["event"] for a in sent_alerts][:1] == [alerts.CLIENT_OFFLINE]


def test_a_node_that_leaves_mid_round_fails_a_job_below_min_clients(
    owner, grid, clock, sent_alerts
):
    job = make_job(owner, total_rounds=3, min_clients=2)
    grid.at(1.0, lambda: grid.kill(12))

    job = run_job(job, grid, clock)

    assert job.status == "failed"
    assert job.error_message == (
        "only 1 client(s) usable in round 1, fewer than min_clients=2; "
        f"failing: {MADRID}/breast_cancer (offline) (see each client's reason on the dashboard)"
    )
    assert clock.elapsed < ROUND_TIMEOUT  # the round did not wait for the lost node
    client_id, entry = client_of(job, MADRID)
    assert entry["status"] == "offline"
    assert rounds_reported(job, client_id) == []
    assert client_of(job, BARCELONA)[1]["status"] == "stopped"
    assert [(a["event"], a["round"]) for a in sent_alerts] == [
        (alerts.CLIENT_OFFLINE, 1),
        (alerts.BELOW_MIN_CLIENTS_RISK, 1),
    ]
    assert (sent_alerts[1]["alive_clients"], sent_alerts[1]["min_clients"]) == (1, 2)


def test_a_reply_from_another_node_is_rejected(owner, grid, clock, madrid):
    job = make_job(owner, total_rounds=2)
    madrid.train = lambda message, message_id, node_id: (
        1.0,
        grid.trained(message, message_id, 11),
    )

    job = run_job(job, grid, clock)

    assert job.status == "completed", job.error_message
    client_id, entry = client_of(job, MADRID)
    assert entry["status"] == "error"
    assert entry["status_reason"] == "reply came from node 11, but the message went to node 12"
    assert rounds_reported(job, client_id) == []
    assert rounds_reported(job, client_of(job, BARCELONA)[0]) == [1, 2]


def test_a_reply_after_the_rounds_deadline_is_not_counted(owner, grid, clock, madrid):
    job = make_job(owner, total_rounds=2)
    madrid.train_seconds = ROUND_TIMEOUT + 1  # its reply comes while round 2 runs

    job = run_job(job, grid, clock)

    assert job.status == "completed", job.error_message
    client_id, entry = client_of(job, MADRID)
    assert entry["status"] == "error"
    assert entry["status_reason"] == f"no reply within the round timeout ({ROUND_TIMEOUT} s)"
    assert clock.elapsed > ROUND_TIMEOUT + 1  # the late reply was there to be pulled
    assert rounds_reported(job, client_id) == []
    assert trains_sent_to(grid, 12) == 1
    assert rounds_reported(job, client_of(job, BARCELONA)[0]) == [1, 2]


def test_a_site_that_rejoins_mid_round_stays_offline_until_the_round_it_lost_is_over(
    owner, grid, clock, madrid
):
    job = make_job(owner, total_rounds=2)
    barcelona = FakeSite(BARCELONA, token=BARCELONA, train_seconds=8.0)  # a long round 1
    grid.start_node(11, barcelona)
    grid.start_node(12, madrid)
    grid.at(1.0, lambda: grid.freeze(12))
    grid.at(1.0, lambda: grid.start_node(13, madrid))  # its site restarted the SuperNode

    job = run_job(job, grid, clock)

    assert job.status == "completed", job.error_message
    madrid_id, _ = client_of(job, MADRID)
    barcelona_id, _ = client_of(job, BARCELONA)
    moves = [
        (e.client_id, e.round, e.old_status, e.new_status)
        for e in ClientEvent.objects.filter(job=job).order_by("pk")
    ]
    lost = moves.index((madrid_id, 1, "training", "offline"))
    rejoined = moves.index((madrid_id, 1, "offline", "connected"))
    round_1_over = moves.index((barcelona_id, 1, "training", "reported"))
    # Offline while round 1 went on without it (a dashboard poll sees it), connected after.
    assert lost < round_1_over < rejoined, moves
    assert job.clients_status[madrid_id]["rounds_missed"] == [1]
    assert job.clients_status[madrid_id]["status"] == "completed"  # it reported round 2


def test_a_site_back_too_late_for_the_final_round_ends_dropped_not_completed(
    owner, grid, clock, madrid
):
    job = make_job(owner, total_rounds=3)
    barcelona = FakeSite(BARCELONA, token=BARCELONA, train_seconds=10.0)  # ~10 s rounds
    grid.start_node(11, barcelona)
    grid.start_node(12, madrid)
    grid.at(12.0, lambda: grid.kill(12))  # in round 2, after its round-1 report
    grid.at(24.0, lambda: grid.start_node(13, madrid))  # back during round 3

    job = run_job(job, grid, clock)

    assert job.status == "completed", job.error_message
    _, entry = client_of(job, MADRID)
    assert entry["status"] == "dropped"
    assert entry["status_reason"] == "reported 1 of 3 rounds; missed 2–3"
    assert (entry["rounds_reported"], entry["rounds_missed"]) == (1, [2, 3])
    _, survivor = client_of(job, BARCELONA)
    assert (survivor["status"], survivor.get("rounds_missed", [])) == ("completed", [])
