"""The test Flower app's ClientApp: the site's real one, slowed down only where the run asks."""

from pathlib import Path

import pytest
from flwr.app import ArrayRecord, ConfigRecord, Context, Message, MessageType, RecordDict

from clients.protocol import Record, TrainConfig
from clients.task import build_model
from clients.tests.helpers import (
    act_as_server_app,
    breast_cancer,
    write_breast_cancer_csv,
    write_site_toml,
)
from webapp.tests.flower_test_app.fedtrack_test_app import client_app

NODE_ID = 4242


@pytest.fixture(autouse=True)
def as_the_server_app(monkeypatch: pytest.MonkeyPatch) -> None:
    act_as_server_app(monkeypatch)


@pytest.fixture
def slept(monkeypatch: pytest.MonkeyPatch) -> list[float]:
    seconds: list[float] = []
    monkeypatch.setattr(client_app.time, "sleep", seconds.append)
    return seconds


def run(tmp_path: Path, message_type: str, **run_config: float | str) -> Message:
    write_breast_cancer_csv(tmp_path / "bc.csv")
    site_toml = write_site_toml(tmp_path, {"bc": "bc.csv"}, token="t")
    context = Context(
        run_id=1,
        node_id=NODE_ID,
        node_config={"site-config": str(site_toml)},
        state=RecordDict(),
        run_config=run_config,
    )
    message = Message(content=content(), dst_node_id=NODE_ID, message_type=message_type)
    return client_app.app(message, context)


def content() -> RecordDict:
    """A training message for one epoch on the site's breast-cancer data."""
    _, _, names = breast_cancer()
    config = {
        TrainConfig.SERVER_ROUND: 1,
        **TrainConfig.job_values(
            local_epochs=1,
            learning_rate=0.01,
            feature_names=names,
            classes=["0", "1"],
            hidden_size=8,
        ),
        **TrainConfig.client_values(client_id="client_1a2b3c4d", dataset_name="bc"),
    }
    model = build_model(len(names), 2, hidden=8)
    return RecordDict(
        {Record.ARRAYS: ArrayRecord(model.state_dict()), Record.CONFIG: ConfigRecord(config)}
    )


def test_it_sleeps_after_a_training_reply_at_every_site(tmp_path, slept) -> None:
    reply = run(tmp_path, MessageType.TRAIN, **{"train-sleep": 2.5})

    assert slept == [2.5]
    assert reply.content[Record.METRICS]["train_samples"] > 0  # the real ClientApp trained


def test_it_sleeps_only_at_the_site_it_names(tmp_path, slept) -> None:
    run(tmp_path, MessageType.TRAIN, **{"train-sleep": 2.5, "train-sleep-site": "elsewhere"})
    assert slept == []

    run(tmp_path, MessageType.TRAIN, **{"train-sleep": 2.5, "train-sleep-site": "Hospital Test"})
    assert slept == [2.5]


def test_it_answers_an_identify_query_without_sleeping(tmp_path, slept) -> None:
    reply = run(tmp_path, MessageType.QUERY, **{"train-sleep": 2.5})

    assert slept == []
    assert reply.content["site"]["site-name"] == "Hospital Test"
