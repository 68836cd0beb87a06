"""A job's Flower strategy, composed: the strategy object decides what a round sends and how
replies combine (`configure_train`, `aggregate_train`); the job decides who trains.

Flower's strategies sample from every node of the SuperLink, and send one message per node.
A job trains only its own clients, and a site that gives two datasets to a job is two clients
on one node. So the strategy samples from a view of the SuperLink that holds only this
round's nodes, and each message it makes is copied once per client of its node, with that
client's own config added.
"""

from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from typing import Any

from flwr.app import ArrayRecord, ConfigRecord, Message, RecordDict
from flwr.serverapp.strategy import Strategy

from clients.protocol import Record, TrainConfig
from webapp.serverapp.nodes import ClientSlot


@dataclass(frozen=True)
class _RoundNodes:
    """The Grid call a strategy makes to sample nodes, answered with this round's nodes."""

    node_ids: tuple[int, ...]

    def get_node_ids(self) -> Iterator[int]:
        return iter(self.node_ids)


class Aggregation:
    """One per job: stateful strategies (server-side momentum, adaptive optimizers) keep
    what they learnt between rounds inside the strategy object.

    Build the strategy with `min_available_nodes=1` (and `min_train_nodes=1`): it is shown
    only this round's nodes, and Flower's node sampling waits, without end, for more.
    """

    def __init__(self, strategy: Strategy, job_config: dict[str, Any]) -> None:
        self.strategy = strategy
        self.job_config = job_config  # what every client receives (TrainConfig.job_values)

    def configure_train(
        self, server_round: int, arrays: ArrayRecord, clients: Iterable[ClientSlot]
    ) -> list[tuple[ClientSlot, Message]]:
        """One training message per client, for the clients whose node the strategy samples."""
        by_node: dict[int, list[ClientSlot]] = {}
        for client in clients:
            if client.node_id is not None:
                by_node.setdefault(client.node_id, []).append(client)
        if not by_node:
            return []
        per_node = self.strategy.configure_train(
            server_round,
            arrays,
            ConfigRecord(dict(self.job_config)),
            _RoundNodes(tuple(by_node)),  # type: ignore[arg-type]  # the one call it makes
        )
        outgoing = []
        for message in per_node:
            content = message.content
            for client in by_node.get(message.metadata.dst_node_id, []):
                config = ConfigRecord(
                    {
                        **dict(content.config_records[Record.CONFIG]),
                        **TrainConfig.client_values(
                            client_id=client.client_id, dataset_name=client.dataset_name
                        ),
                    }
                )
                outgoing.append(
                    (
                        client,
                        Message(
                            content=RecordDict({**dict(content), Record.CONFIG: config}),
                            dst_node_id=client.node_id,
                            message_type=message.metadata.message_type,
                            group_id=str(server_round),
                        ),
                    )
                )
        return outgoing

    def aggregate_train(self, server_round: int, replies: Iterable[Message]) -> ArrayRecord | None:
        """The next global model from the round's accepted replies (None: nothing to use)."""
        arrays, _ = self.strategy.aggregate_train(server_round, replies)
        return arrays
