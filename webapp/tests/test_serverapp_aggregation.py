"""The job's aggregation composes any Flower strategy: the strategy's own training config
reaches every client, one message per client, and its aggregation combines the replies."""

from collections import OrderedDict

import numpy as np
import pytest
import torch
from flwr.app import ArrayRecord, Message, MessageType, MetricRecord, RecordDict
from flwr.serverapp.strategy import FedProx

from clients.protocol import NUM_EXAMPLES, Record, TrainConfig
from clients.tests.helpers import act_as_server_app
from webapp.server_fn.strategies import FedAvgModelStrategy
from webapp.serverapp.aggregation import Aggregation
from webapp.serverapp.nodes import ClientSlot

JOB_VALUES = TrainConfig.job_values(
    local_epochs=2, learning_rate=0.01, feature_names=["a"], classes=["0", "1"], hidden_size=4
)


@pytest.fixture(autouse=True)
def as_the_server_app(monkeypatch: pytest.MonkeyPatch) -> None:
    act_as_server_app(monkeypatch)


def slot(client_id: str, node_id: int, dataset: str) -> ClientSlot:
    return ClientSlot(client_id, 1, "site", "key", dataset, node_id=node_id)


def test_each_client_gets_its_own_message_with_the_strategys_config() -> None:
    strategy = FedProx(proximal_mu=0.5, min_train_nodes=1, min_available_nodes=1)
    aggregation = Aggregation(strategy, JOB_VALUES)
    arrays = ArrayRecord(OrderedDict(w=torch.zeros(3)))
    clients = [
        slot("client_a", 11, "bc"),
        slot("client_b", 11, "heart"),
        slot("client_c", 12, "bc"),
    ]

    outgoing = aggregation.configure_train(4, arrays, clients)

    assert sorted(client.client_id for client, _ in outgoing) == [
        "client_a",
        "client_b",
        "client_c",
    ]
    for client, message in outgoing:
        config = message.content[Record.CONFIG]
        assert message.metadata.dst_node_id == client.node_id
        assert message.metadata.message_type == MessageType.TRAIN
        assert message.metadata.group_id == "4"
        assert config["proximal-mu"] == 0.5  # what the strategy adds travels on
        assert TrainConfig.from_config(config) == TrainConfig(
            server_round=4,
            client_id=client.client_id,
            dataset_name=client.dataset_name,
            local_epochs=2,
            learning_rate=0.01,
            feature_names=["a"],
            classes=["0", "1"],
            hidden_size=4,
        )
        assert message.content[Record.ARRAYS] is arrays


def reply(value: float, examples: int) -> Message:
    content = RecordDict(
        {
            Record.ARRAYS: ArrayRecord(OrderedDict(w=torch.full((3,), value))),
            Record.METRICS: MetricRecord({NUM_EXAMPLES: examples}),
        }
    )
    return Message(content=content, dst_node_id=11, message_type=MessageType.TRAIN)


def test_fedavg_weights_each_clients_model_by_its_training_samples() -> None:
    aggregation = FedAvgModelStrategy(
        local_epochs=1, learning_rate=0.1, feature_names=["a"], classes=["0", "1"], hidden_size=4
    )

    arrays = aggregation.aggregate_train(1, [reply(1.0, 30), reply(5.0, 10)])

    assert arrays is not None
    np.testing.assert_allclose(arrays["w"].numpy(), np.full(3, 2.0))


def test_no_clients_no_messages() -> None:
    aggregation = Aggregation(FedProx(proximal_mu=0.5), JOB_VALUES)

    assert aggregation.configure_train(1, ArrayRecord(), [slot("client_a", None, "bc")]) == []
