"""A real 2-round job: a real SuperLink, three real SuperNodes, real PyTorch training."""

import pytest
from django.test import Client

from webapp.models import ClientEvent, ClientRoundMetric
from webapp.tests.conftest import register, submit_job, wait_for_job

pytestmark = [pytest.mark.flower, pytest.mark.django_db(transaction=True)]


def test_it_trains_a_two_round_job_across_three_sites(federation, owner, owner_token):
    connections = register(owner, federation)
    api = Client(HTTP_AUTHORIZATION=f"Bearer {owner_token}")
    job_id = submit_job(
        owner_token,
        connections,
        name="breast cancer, 3 hospitals",
        rounds=2,
        local_epochs=2,
        learning_rate=0.01,
        min_clients=3,
    )

    job, seen = wait_for_job(job_id)

    assert job.status == "completed", job.error_message
    assert job.current_round == 2
    assert {"training", "completed"} <= seen
    assert len(job.clients_status) == 3
    names = {entry["connection_name"] for entry in job.clients_status.values()}
    assert names == {"Hospital Barcelona", "Hospital Madrid", "Hospital Valencia"}
    for client_id, entry in job.clients_status.items():
        assert client_id.startswith("client_") and len(client_id) == 15
        assert entry["status"] == "completed"
        assert entry["current_round"] == 2
        assert 0.5 < entry["accuracy"] <= 1.0  # held-out accuracy of a real model
        assert entry["loss"] >= 0
        assert entry["train_samples"] > entry["test_samples"] > 0
        assert entry["response_time"] > 0
        assert entry["last_seen"] is not None
        assert entry["node_id"].isdigit()
    # The demo shards have different sizes: each client reports its own.
    totals = sorted(e["train_samples"] + e["test_samples"] for e in job.clients_status.values())
    assert totals == [139, 180, 250]

    history = ClientRoundMetric.objects.filter(job_id=job_id)
    assert history.count() == 6
    for client_id in job.clients_status:
        rounds = list(
            history.filter(client_id=client_id).order_by("round").values_list("round", flat=True)
        )
        assert rounds == [1, 2]
    events = ClientEvent.objects.filter(job_id=job_id)
    assert set(events.values_list("new_status", flat=True)) >= {
        "connected",
        "training",
        "reported",
        "completed",
    }

    performance = api.get(
        f"/api/jobs/{job_id}/clients/{next(iter(job.clients_status))}/performance/"
    ).json()
    assert performance["performance_data"]["labels"] == ["Round 1", "Round 2"]
    assert len(performance["performance_data"]["accuracy"]) == 2

    model = api.get(f"/api/jobs/{job_id}/").json()["job"]
    assert model["model_available"] is True
    download = Client()
    download.force_login(owner)
    assert download.get(f"/jobs/{job_id}/model/").status_code == 200


def test_it_fails_a_job_whose_site_never_connects(federation, owner, settings):
    """A site whose SuperNode is not up never blocks the job: it fails with the reason."""
    from webapp import jobs
    from webapp.models import Connection

    connections = register(owner, federation[:1])
    ghost = Connection.objects.create(
        owner=owner,
        name="Hospital Ghost",
        ip=federation[1].host,
        port=federation[1].port,
        token=federation[1].token,
    )
    # Same site API (so the job validates), but the job is told the site's token is
    # another one: no node will ever identify itself with that key.
    job = jobs.create_job(
        owner=owner,
        request=jobs.JobRequest(
            name="ghost",
            selections=[(connections[0].pk, "breast_cancer"), (ghost.pk, "breast_cancer")],
            rounds=1,
            local_epochs=1,
            learning_rate=0.01,
            min_clients=2,
        ),
    )
    Connection.objects.filter(pk=ghost.pk).update(token="not-the-site-token")

    job, _ = wait_for_job(job.pk, timeout=180)

    assert job.status == "failed"
    assert "min_clients=2" in job.error_message
    assert "Hospital Ghost" in job.error_message
    ghost_entry = next(
        e for e in job.clients_status.values() if e["connection_name"] == "Hospital Ghost"
    )
    assert ghost_entry["status"] == "error"
    assert "did not connect" in ghost_entry["status_reason"]
