"""FedAvgModelStrategy and update_client_tracking (the seed's names).

The strategy targets only the nodes of this job's clients (other jobs' sites share the
SuperLink) and sends one message per client, so a site that gives two datasets to a job
trains two clients on one node. Aggregation is Flower's own FedAvg, weighted by samples.
"""

import json
import logging
from collections.abc import Iterable
from dataclasses import dataclass

from flwr.app import ArrayRecord, ConfigRecord, Message, MessageType, MetricRecord, RecordDict
from flwr.serverapp.strategy import FedAvg

from webapp.tracking import ClientTracker
from webapp.tracking.reports import ReportError, arrays_mismatch, shown, validate_report

logger = logging.getLogger(__name__)


@dataclass
class ClientSlot:
    """One client of the job: which site serves it, on which Flower node, with which data."""

    client_id: str
    connection_id: int
    site_name: str
    site_key: str
    dataset_name: str
    node_id: int | None = None


@dataclass(frozen=True)
class Pushed:
    """What the server sent: replies are matched back to it by message id."""

    client_id: str
    node_id: int
    server_round: int
    pushed_at: float


class FedAvgModelStrategy(FedAvg):
    def __init__(
        self,
        *,
        local_epochs: int,
        learning_rate: float,
        feature_names: list[str],
        classes: list[str],
        hidden_size: int,
        train_sleep: float = 0.0,
        train_sleep_site: str = "",
    ) -> None:
        # This job's own loop decides who trains: FedAvg's node sampling is not used.
        super().__init__(min_train_nodes=1, min_evaluate_nodes=0, min_available_nodes=1)
        self.local_epochs = local_epochs
        self.learning_rate = learning_rate
        self.feature_names = feature_names
        self.classes = classes
        self.hidden_size = hidden_size
        self.train_sleep = train_sleep
        # Failure tests make one site a straggler; empty: every site sleeps train_sleep.
        self.train_sleep_site = train_sleep_site

    def configure_client_train(
        self, server_round: int, arrays: ArrayRecord, clients: Iterable[ClientSlot]
    ) -> list[tuple[ClientSlot, Message]]:
        messages = []
        for client in clients:
            config = ConfigRecord(
                {
                    "server-round": server_round,
                    "client-id": client.client_id,
                    "dataset-name": client.dataset_name,
                    "local-epochs": self.local_epochs,
                    "learning-rate": self.learning_rate,
                    "feature-names": json.dumps(self.feature_names),
                    "classes": json.dumps(self.classes),
                    "hidden-size": self.hidden_size,
                    "train-sleep": self._sleep_for(client),
                }
            )
            message = Message(
                content=RecordDict({"arrays": arrays, "config": config}),
                dst_node_id=client.node_id,
                message_type=MessageType.TRAIN,
                group_id=str(server_round),
            )
            messages.append((client, message))
        return messages

    def _sleep_for(self, client: ClientSlot) -> float:
        if self.train_sleep_site and client.site_name != self.train_sleep_site:
            return 0.0
        return self.train_sleep


def update_client_tracking(
    tracker: ClientTracker,
    pushed: Pushed,
    reply: Message,
    reference: ArrayRecord,
    response_time: float,
) -> Message | None:
    """Record one reply the moment it arrives; return what FedAvg may aggregate, if anything.

    A reply counts only if it comes from the node the message went to, names the client the
    message was for, carries finite metrics in range and a model of the right shape.
    """
    client_id, server_round = pushed.client_id, pushed.server_round
    if reply.has_error():
        # Flower's own error replies come from node 1 (the SuperLink); the pushed message
        # tells whose they are.
        tracker.failed(
            client_id,
            server_round,
            f"Flower error {reply.error.code}: {reply.error.reason}",
        )
        return None
    tracker.seen(client_id)
    content = reply.content
    if reply.metadata.src_node_id != pushed.node_id:
        tracker.failed(
            client_id,
            server_round,
            f"reply came from node {reply.metadata.src_node_id}, "
            f"but the message went to node {pushed.node_id}",
        )
        return None
    client_record = content.config_records.get("client")
    claimed = client_record.get("client_id") if client_record is not None else None
    if claimed != client_id:
        # Spoofing or a confused site: flagged on the client the message was for, naming
        # the node the reply really came from (never what it claims).
        if claimed is None:
            what = "names no client_id"
        elif isinstance(claimed, str) and claimed in tracker.statuses:
            what = f"claims to be {claimed}, another client of this job"
        else:
            what = f"claims client_id {shown(claimed)}, which is not in this job"
        tracker.failed(
            client_id,
            server_round,
            f"rejected reply: node {reply.metadata.src_node_id} answered for {client_id} "
            f"but {what}",
        )
        return None
    error_record = content.config_records.get("error")
    if error_record is not None:
        tracker.failed(client_id, server_round, str(error_record.get("message", "unknown error")))
        return None
    metrics = content.metric_records.get("metrics")
    arrays = content.array_records.get("arrays")
    try:
        if metrics is None or arrays is None:
            raise ReportError("reply has no metrics or no model")
        report = validate_report(dict(metrics))
        mismatch = arrays_mismatch(
            {key: value.numpy() for key, value in arrays.items()}, reference
        )
        if mismatch:
            raise ReportError(mismatch)
    except ReportError as exc:
        tracker.failed(client_id, server_round, f"rejected report: {exc}")
        return None
    tracker.reported(client_id, server_round, report, response_time)
    return Message(
        content=RecordDict(
            {"arrays": arrays, "metrics": MetricRecord({"num-examples": report.train_samples})}
        ),
        dst_node_id=pushed.node_id,
        message_type=MessageType.TRAIN,
    )
