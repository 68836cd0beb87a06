"""The ClientApp, driven with real Messages built the way the ServerApp builds them."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch
from flwr.app import ArrayRecord, ConfigRecord, Context, Message, MessageType, RecordDict

from clients.config import SiteConfigError
from clients.protocol import site_key
from clients.task import build_model
from clients.tests.helpers import (
    act_as_server_app,
    breast_cancer,
    write_breast_cancer_csv,
    write_site_toml,
)
from clients.torch_client import app

TOKEN = "s3cret-token"
NODE_ID = 4242


@pytest.fixture(autouse=True)
def as_the_server_app(monkeypatch: pytest.MonkeyPatch) -> None:
    act_as_server_app(monkeypatch)


@pytest.fixture
def site_toml(tmp_path: Path) -> Path:
    write_breast_cancer_csv(tmp_path / "bc.csv")
    (tmp_path / "bad.csv").write_text("a;b;target\n1;2;0\n", encoding="utf-8")
    return write_site_toml(tmp_path, {"bc": "bc.csv", "bad": "bad.csv"}, token=TOKEN)


def context(site_toml: Path | None, run_config: dict[str, float] | None = None) -> Context:
    node_config = {"site-config": str(site_toml)} if site_toml else {}
    return Context(
        run_id=1,
        node_id=NODE_ID,
        node_config=node_config,
        state=RecordDict(),
        run_config=run_config or {},
    )


def train_message(dataset: str = "bc", *, hidden: int = 32, model_hidden: int = 32) -> Message:
    _, _, names = breast_cancer()
    torch.manual_seed(0)
    model = build_model(len(names), 2, hidden=model_hidden)
    config = ConfigRecord(
        {
            "server-round": 1,
            "client-id": "client_1a2b3c4d",
            "dataset-name": dataset,
            "local-epochs": 2,
            "learning-rate": 0.01,
            "feature-names": json.dumps(names),
            "classes": json.dumps(["0", "1"]),
            "hidden-size": hidden,
        }
    )
    return Message(
        content=RecordDict({"arrays": ArrayRecord(model.state_dict()), "config": config}),
        dst_node_id=NODE_ID,
        message_type=MessageType.TRAIN,
    )


def test_it_identifies_the_site_by_name_key_and_datasets(site_toml: Path) -> None:
    query = Message(content=RecordDict(), dst_node_id=NODE_ID, message_type=MessageType.QUERY)

    reply = app(query, context(site_toml))

    assert dict(reply.content["site"]) == {
        "site-name": "Hospital Test",
        "site-key": site_key(TOKEN),
        "datasets": json.dumps(["bc", "bad"]),
    }
    assert reply.metadata.message_type == MessageType.QUERY


def test_it_trains_the_global_model_and_reports_held_out_metrics(site_toml: Path) -> None:
    msg = train_message()
    before = msg.content["arrays"].to_torch_state_dict()

    reply = app(msg, context(site_toml))

    assert not reply.has_error()
    assert set(reply.content) == {"arrays", "metrics", "client"}
    after = reply.content["arrays"].to_torch_state_dict()
    assert list(after) == list(before)
    assert not torch.equal(after["0.weight"], before["0.weight"])
    metrics = dict(reply.content["metrics"])
    assert set(metrics) == {
        "num-examples",
        "train_loss",
        "loss",
        "accuracy",
        "train_samples",
        "test_samples",
        "train_seconds",
    }
    assert metrics["num-examples"] == metrics["train_samples"] == 456
    assert metrics["test_samples"] == 113
    assert metrics["accuracy"] > 0.85
    assert 0 < metrics["loss"] < 1
    assert metrics["train_seconds"] > 0
    assert dict(reply.content["client"]) == {
        "client_id": "client_1a2b3c4d",
        "site-key": site_key(TOKEN),
        "dataset-name": "bc",
    }


def test_it_explains_a_dataset_unknown_to_the_site(site_toml: Path) -> None:
    reply = app(train_message("heart"), context(site_toml))

    assert set(reply.content) == {"client", "error"}
    assert reply.content["client"]["client_id"] == "client_1a2b3c4d"
    assert reply.content["client"]["site-key"] == site_key(TOKEN)
    assert reply.content["error"]["message"] == (
        "dataset 'heart' is not configured at site 'Hospital Test' (it has: 'bc', 'bad')"
    )


def test_it_explains_an_unusable_dataset(site_toml: Path) -> None:
    reply = app(train_message("bad"), context(site_toml))

    assert reply.content["error"]["message"] == (
        "dataset 'bad': the header is a single column; the file looks semicolon-separated, "
        "but fields must be separated by commas"
    )


def test_it_explains_a_global_model_that_does_not_fit(site_toml: Path) -> None:
    reply = app(train_message(hidden=32, model_hidden=16), context(site_toml))

    message = reply.content["error"]["message"]
    assert message.startswith("the global model does not fit this site's model:")
    assert "size mismatch for 0.weight" in message


def test_a_supernode_without_site_config_fails_loudly() -> None:
    with pytest.raises(SiteConfigError, match="the SuperNode has no 'site-config' node config"):
        app(train_message(), context(None))
