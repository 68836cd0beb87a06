"""How a job's replies become the next global model.

`FedAvgModelStrategy` is a job's aggregation with Flower's own FedAvg composed in (weighted by
each client's training samples); `update_client_tracking` records one reply the moment it
arrives and says whether FedAvg may use it.
"""

from dataclasses import dataclass

from flwr.app import ArrayRecord, Message, MessageType, MetricRecord, RecordDict
from flwr.serverapp.strategy import FedAvg

from clients.protocol import ERROR_MESSAGE, NUM_EXAMPLES, ClientKey, Record, TrainConfig
from webapp.serverapp.aggregation import Aggregation
from webapp.tracking import ClientTracker
from webapp.tracking.reports import ReportError, arrays_mismatch, shown, validate_report


@dataclass(frozen=True)
class Pushed:
    """What the server sent: replies are matched back to it by message id."""

    client_id: str
    node_id: int
    server_round: int
    pushed_at: float


class FedAvgModelStrategy(Aggregation):
    def __init__(
        self,
        *,
        local_epochs: int,
        learning_rate: float,
        feature_names: list[str],
        classes: list[str],
        hidden_size: int,
    ) -> None:
        super().__init__(
            # The job's round loop decides who trains: FedAvg samples every node it is shown.
            FedAvg(
                min_train_nodes=1,
                min_evaluate_nodes=0,
                min_available_nodes=1,
                weighted_by_key=NUM_EXAMPLES,
                arrayrecord_key=Record.ARRAYS,
                configrecord_key=Record.CONFIG,
            ),
            TrainConfig.job_values(
                local_epochs=local_epochs,
                learning_rate=learning_rate,
                feature_names=feature_names,
                classes=classes,
                hidden_size=hidden_size,
            ),
        )


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
    client_record = content.config_records.get(Record.CLIENT)
    claimed = client_record.get(ClientKey.CLIENT_ID) if client_record is not None else None
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
    error_record = content.config_records.get(Record.ERROR)
    if error_record is not None:
        reason = error_record.get(ERROR_MESSAGE, "unknown error")
        tracker.failed(client_id, server_round, str(reason))
        return None
    metrics = content.metric_records.get(Record.METRICS)
    arrays = content.array_records.get(Record.ARRAYS)
    try:
        if metrics is None or arrays is None:
            raise ReportError("reply has no metrics or no model")
        report = validate_report(dict(metrics))
        mismatch = arrays_mismatch({key: value.numpy() for key, value in arrays.items()}, reference)
        if mismatch:
            raise ReportError(mismatch)
    except ReportError as exc:
        tracker.failed(client_id, server_round, f"rejected report: {exc}")
        return None
    tracker.reported(client_id, server_round, report, response_time)
    return Message(
        content=RecordDict(
            {
                Record.ARRAYS: arrays,
                Record.METRICS: MetricRecord({NUM_EXAMPLES: report.train_samples}),
            }
        ),
        dst_node_id=pushed.node_id,
        message_type=MessageType.TRAIN,
    )
