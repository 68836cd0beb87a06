"""Truthful client status with real processes: killed sites, restarted sites, long training,
stragglers and a killed ServerApp. No mocks of Flower.

These tests run on their own federation (SIGKILL leaves the shared one alone) with
CLIENT_TIMEOUT_THRESHOLD=10 s, in the ServerApps and in this process alike.
"""

import os
import signal
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from django.core.cache import cache
from django.test import Client

from webapp import jobs
from webapp.models import ClientEvent, ClientRoundMetric, TrainingJob
from webapp.tests.conftest import Federation, register, running_federation

pytestmark = [pytest.mark.flower, pytest.mark.once, pytest.mark.django_db(transaction=True)]

THRESHOLD = 10
TEST_APP_DIR = Path(__file__).parent / "flower_test_app"
# A ServerApp and each ClientApp import torch and Django when they start: on a loaded 2-core
# machine that alone has taken a minute.
START_TIMEOUT = 240


@pytest.fixture(scope="module")
def fragile(django_db_setup, django_db_blocker, tmp_path_factory) -> Iterator[Federation]:
    env = {
        "CLIENT_TIMEOUT_THRESHOLD": str(THRESHOLD),
        "JOB_ROUND_TIMEOUT": "120",
        "JOB_NODE_WAIT_TIMEOUT": "180",
    }
    with running_federation(Path(tmp_path_factory.mktemp("fragile")), env) as federation:
        yield federation


@pytest.fixture(autouse=True)
def liveness_settings(settings):
    # The app whose ClientApp takes `train-sleep` and `train-sleep-site` from the run config.
    settings.FLOWER_APP_DIR = TEST_APP_DIR
    settings.CLIENT_TIMEOUT_THRESHOLD = THRESHOLD
    settings.JOB_SERVER_TIMEOUT = 20
    cache.clear()


@pytest.fixture
def api(owner_token) -> Client:
    return Client(HTTP_AUTHORIZATION=f"Bearer {owner_token}")


def start_job(
    owner, federation, rounds: int, min_clients: int = 2, webhook: str = "", **run_config
):
    connections = register(owner, federation)
    request = jobs.JobRequest(
        name="liveness",
        selections=[(c.pk, "breast_cancer") for c in connections],
        rounds=rounds,
        local_epochs=1,
        learning_rate=0.01,
        min_clients=min_clients,
        alert_webhook_url=webhook,
    )
    job = jobs.create_job(owner=owner, request=request, run_config=run_config)
    assert job.status == "pending", job.error_message
    return job


def clients_by_site(api: Client, job: TrainingJob) -> dict[str, dict]:
    response = api.get(f"/api/jobs/{job.pk}/clients/")
    assert response.status_code == 200
    return {row["name"]: row for row in response.json()["clients"]}


def wait_for(condition, timeout: float, what: str, every: float = 0.5):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        result = condition()
        if result:
            return result
        time.sleep(every)
    events = [
        f"{e.created_at:%H:%M:%S.%f} {e.client_id} r{e.round} {e.old_status}->{e.new_status} "
        f"{e.message}"
        for e in ClientEvent.objects.order_by("-pk")[:15]
    ]
    raise AssertionError(
        f"not within {timeout:.0f} s: {what}; latest events:\n" + "\n".join(events)
    )


def wait_until_finished(job: TrainingJob, timeout: float = 480) -> TrainingJob:
    wait_for(lambda: TrainingJob.objects.get(pk=job.pk).is_finished, timeout, f"job {job.pk} ends")
    job.refresh_from_db()
    return job


def children(pid: int) -> list[int]:
    found = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            stat = (entry / "stat").read_text()
        except OSError:
            continue
        # the command name may hold spaces: the parent pid is the 2nd field after ')'
        if int(stat.rsplit(")", 1)[1].split()[1]) == pid:
            found.append(int(entry.name))
    return found


def descendants(pid: int) -> list[int]:
    found = children(pid)
    for child in list(found):
        found += descendants(child)
    return found


def cmdline(pid: int) -> str:
    try:
        return Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ").decode()
    except OSError:
        return ""


def kill_site(federation: Federation, name: str) -> None:
    """SIGKILL a site: its client API; its SuperNode (with superexec and clientapps) dies
    with it (clients/group_guard.py)."""
    process = federation.services[name].process
    os.killpg(process.pid, signal.SIGKILL)
    process.wait(10)


def restart_site(federation: Federation, name: str) -> None:
    site = next(s for s in federation.sites if s.name == name)
    federation.services[name] = federation.stack.start_site(site)
    federation.stack.wait_for_site(site, federation.services[name])


MADRID = "Hospital Madrid"


def test_it_marks_a_killed_site_offline_and_finishes_the_job_without_it(
    fragile, owner, api, receiver
):
    job = start_job(owner, fragile, rounds=3, webhook=receiver.url, **{"train-sleep": 4.0})
    wait_for(
        lambda: clients_by_site(api, job)[MADRID]["status"] == "training",
        START_TIMEOUT,
        "Madrid trains in round 1",
    )

    kill_site(fragile, MADRID)
    killed_at = time.monotonic()
    shown: set[str] = set()
    flagged_after: float | None = None

    def offline_row() -> dict | None:
        nonlocal flagged_after
        row = clients_by_site(api, job)[MADRID]
        shown.add(row["status"])
        if flagged_after is None and row["site_down"]:
            flagged_after = time.monotonic() - killed_at
        return row if row["status"] == "offline" else None

    try:
        offline = wait_for(
            offline_row,
            THRESHOLD + 5,
            "the killed site shows offline through the API",
            every=0.25,
        )
        noticed_after = time.monotonic() - killed_at
        job = wait_until_finished(job)
    finally:
        restart_site(fragile, MADRID)

    print(
        f"killed site flagged down after {flagged_after} s, offline after {noticed_after:.1f} s"
        f" (threshold {THRESHOLD} s); shown meanwhile: {sorted(shown)}"
    )
    # Its client API refused from the start: the row says so within one probe (≤ 5 s), and
    # a site known dead is never a mere straggler.
    assert flagged_after is not None and flagged_after <= 5, flagged_after
    assert "slow" not in shown, shown
    assert "Hospital Madrid" in offline["status_reason"]
    assert job.status == "completed", job.error_message
    final = clients_by_site(api, job)
    assert final[MADRID]["status"] == "offline"
    assert final[MADRID]["current_round"] == 1
    for survivor in ("Hospital Barcelona", "Hospital Valencia"):
        assert final[survivor]["status"] == "completed"
        rounds = ClientRoundMetric.objects.filter(job=job, client_id=final[survivor]["id"])
        assert sorted(rounds.values_list("round", flat=True)) == [1, 2, 3]
    assert not ClientRoundMetric.objects.filter(job=job, client_id=final[MADRID]["id"]).exists()
    assert ClientEvent.objects.filter(
        job=job, client_id=final[MADRID]["id"], old_status="training", new_status="offline"
    ).exists()
    offline_alert, risk_alert = sorted(
        receiver.events(2), key=lambda e: e["event"] != "client_offline"
    )
    assert offline_alert["event"] == "client_offline"
    assert (offline_alert["site"], offline_alert["round"]) == (MADRID, 1)
    assert risk_alert["event"] == "min_clients_at_risk"
    assert (risk_alert["alive_clients"], risk_alert["min_clients"]) == (2, 2)


def test_a_restarted_site_rejoins_and_reports_in_the_next_round(fragile, owner, api):
    job = start_job(owner, fragile, rounds=4, **{"train-sleep": 3.0})
    wait_for(
        lambda: clients_by_site(api, job)[MADRID]["status"] == "training",
        START_TIMEOUT,
        "Madrid trains in round 1",
    )
    old_node = clients_by_site(api, job)[MADRID]["node_id"]

    kill_site(fragile, MADRID)
    wait_for(
        lambda: clients_by_site(api, job)[MADRID]["status"] == "offline",
        THRESHOLD + 5,
        "the killed site shows offline",
        every=0.25,
    )
    offline_in_round = TrainingJob.objects.get(pk=job.pk).current_round
    restart_site(fragile, MADRID)
    job = wait_until_finished(job)

    assert job.status == "completed", job.error_message
    madrid = clients_by_site(api, job)[MADRID]
    assert madrid["status"] == "completed"
    assert madrid["node_id"] != old_node  # a restarted SuperNode is a new Flower node
    reported = list(
        ClientRoundMetric.objects.filter(job=job, client_id=madrid["id"]).values_list(
            "round", flat=True
        )
    )
    assert reported and min(reported) > offline_in_round
    assert reported == list(range(min(reported), 5))  # every round after it rejoined
    timeline = [
        (e.old_status, e.new_status, e.message)
        for e in ClientEvent.objects.filter(job=job, client_id=madrid["id"]).order_by("pk")
    ]
    print(*timeline, sep="\n")
    rejoined = [t for t in timeline if t[:2] == ("offline", "connected")]
    assert len(rejoined) == 1, timeline
    assert "rejoined as node" in rejoined[0][2]


def kill_supernode(federation: Federation, name: str) -> None:
    """SIGKILL a site's SuperNode (with its superexec and clientapps) and nothing else: the
    site's process notices and restarts it, as a new Flower node."""
    process = federation.services[name].process
    for pid in descendants(process.pid):
        if "flower-supernode" in cmdline(pid) and os.getpgid(pid) == pid:
            os.killpg(pid, signal.SIGKILL)


def test_a_supernode_killed_mid_round_shows_the_round_lost_then_rejoins(fragile, owner, api):
    job = start_job(owner, fragile, rounds=4, **{"train-sleep": 8.0})
    wait_for(
        lambda: clients_by_site(api, job)[MADRID]["status"] == "training",
        START_TIMEOUT,
        "Madrid trains",
    )
    before = clients_by_site(api, job)[MADRID]
    lost_round = before["current_round"]

    kill_supernode(fragile, MADRID)
    killed_at = time.monotonic()
    offline = wait_for(
        lambda: (row := clients_by_site(api, job)[MADRID])["status"] == "offline" and row,
        THRESHOLD,
        "the client whose SuperNode died shows offline",
        every=0.25,
    )
    noticed_after = time.monotonic() - killed_at
    rejoined = wait_for(
        lambda: (
            (row := clients_by_site(api, job)[MADRID])["node_id"] != before["node_id"]
            and row["status"] in ("connected", "training", "reported")
            and row
        ),
        120,
        "Madrid rejoins on its restarted SuperNode",
    )
    rejoined_after = time.monotonic() - killed_at
    job = wait_until_finished(job)

    print(
        f"round {lost_round} lost: offline after {noticed_after:.1f} s (threshold {THRESHOLD} s),"
        f" rejoined after {rejoined_after:.1f} s: {offline['status_reason']}"
    )
    assert f"its work in round {lost_round} is lost" in offline["status_reason"]
    assert rejoined["node_id"] != before["node_id"]
    assert job.status == "completed", job.error_message
    final = clients_by_site(api, job)[MADRID]
    assert lost_round in final["rounds_missed"]
    assert final["rounds_reported"] + len(final["rounds_missed"]) == 4


def test_a_site_training_longer_than_the_threshold_stays_training(fragile, owner, api):
    job = start_job(owner, fragile, rounds=1, **{"train-sleep": THRESHOLD + 8.0})
    wait_for(
        lambda: {r["status"] for r in clients_by_site(api, job).values()} == {"training"},
        START_TIMEOUT,
        "every client trains",
    )

    trains_since = time.monotonic()
    still_training_after = 0.0  # seconds since every client trained, when one last did
    seen: dict[str, str] = {}
    while not TrainingJob.objects.get(pk=job.pk).is_finished:
        rows = clients_by_site(api, job).values()
        seen |= {row["status"]: row["status_reason"] for row in rows}
        if any(row["status"] == "training" for row in rows):
            still_training_after = time.monotonic() - trains_since
        time.sleep(0.5)

    assert still_training_after > THRESHOLD, seen  # watched past the threshold, not offline
    assert set(seen) <= {"training", "reported", "completed"}, seen
    assert wait_until_finished(job).status == "completed"


def test_it_shows_a_straggler_slow_while_the_others_have_reported(fragile, owner, api, settings):
    # Slow is read in this process: from 1.5 x the others' reply time, whatever this machine's
    # load makes that (a ClientApp's start alone can take seconds here).
    settings.CLIENT_SLOW_FACTOR = 1.5
    job = start_job(owner, fragile, rounds=1, **{"train-sleep": 30.0, "train-sleep-site": MADRID})

    slow = wait_for(
        lambda: (row := clients_by_site(api, job)[MADRID])["status"] == "slow" and row,
        START_TIMEOUT,
        "Madrid shows slow",
    )
    others = clients_by_site(api, job)

    assert {others[n]["status"] for n in others if n != MADRID} <= {"reported", "completed"}
    assert "the round's median reply time" in slow["status_reason"]
    assert wait_until_finished(job).status == "completed"


def test_it_fails_the_job_when_its_serverapp_is_killed(fragile, owner, api):
    job = start_job(owner, fragile, rounds=3, **{"train-sleep": 5.0})
    wait_for(
        lambda: TrainingJob.objects.get(pk=job.pk).status == "running", START_TIMEOUT, "job runs"
    )
    superlink = fragile.stack.services[0].process
    serverapps = wait_for(
        lambda: [p for p in descendants(superlink.pid) if "flwr-serverapp" in cmdline(p)],
        30,
        "the job's ServerApp process",
    )

    for pid in serverapps:
        os.kill(pid, signal.SIGKILL)
    killed_at = time.monotonic()
    failed = wait_for(
        lambda: (
            (body := api.get(f"/api/jobs/{job.pk}/").json()["job"])["status"] == "failed" and body
        ),
        60,
        "the job shows failed",
        every=1,
    )

    print(f"job failed {time.monotonic() - killed_at:.1f} s after its ServerApp was killed")
    assert failed["error_message"]
    assert {row["status"] for row in clients_by_site(api, job).values()} == {"stopped"}
