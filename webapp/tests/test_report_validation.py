"""What a client reports after a round, the one home of its checks' tests.

Malformed replies go through update_client_tracking with real Flower messages and a real
ClientTracker on the test database: the bad reply is rejected for its client and round with an
event saying why, and the round's other clients are stored as usual. The validator itself is
fuzzed, and given what a Flower record cannot carry."""

import math
import time
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pytest
from flwr.app import (
    Array,
    ArrayRecord,
    ConfigRecord,
    Error,
    Message,
    MessageType,
    Metadata,
    MetricRecord,
    RecordDict,
)
from hypothesis import given, settings
from hypothesis import strategies as st

from clients.tests.helpers import act_as_server_app
from webapp import tracking
from webapp.models import ClientEvent, ClientRoundMetric
from webapp.server_fn.strategies import Pushed, update_client_tracking
from webapp.tests.factories import make_job

ROUND = 2
NODES = [101, 202, 303]
GOOD_METRICS: dict[str, Any] = {
    "num-examples": 80,
    "accuracy": 0.9,
    "loss": 0.3,
    "train_loss": 0.2,
    "train_samples": 80,
    "test_samples": 20,
    "train_seconds": 1.5,
}


def weights(fill: float = 0.0, **shapes: tuple[int, ...]) -> dict[str, np.ndarray]:
    shapes = shapes or {"w": (2, 3), "b": (3,)}
    return {name: np.full(shape, fill, dtype=np.float32) for name, shape in shapes.items()}


def arrays(values: dict[str, np.ndarray]) -> ArrayRecord:
    return ArrayRecord({name: Array(value) for name, value in values.items()})


REFERENCE = arrays(weights())


@dataclass
class Reply:
    """What one client sends back; each malformed case changes one thing."""

    metrics: dict[str, Any] | None = field(default_factory=lambda: dict(GOOD_METRICS))
    arrays: dict[str, np.ndarray] | None = field(default_factory=weights)
    client: dict[str, Any] | None = None  # None: the right client_id
    error_record: dict[str, Any] | None = None
    from_node: int | None = None  # None: the node the message went to
    flower_error: Error | None = None


def message(reply: Reply, client_id: str, node_id: int) -> Message:
    metadata = Metadata(
        run_id=1,
        message_id="",
        src_node_id=node_id if reply.from_node is None else reply.from_node,
        dst_node_id=1,
        reply_to_message_id=f"msg-{client_id}",
        group_id=str(ROUND),
        created_at=time.time(),
        ttl=600,
        message_type=MessageType.TRAIN,
    )
    if reply.flower_error is not None:
        return Message(error=reply.flower_error, metadata=metadata)
    content: dict[str, Any] = {
        "client": ConfigRecord(
            {"client_id": client_id, "site-key": "k"} if reply.client is None else reply.client
        )
    }
    if reply.metrics is not None:
        content["metrics"] = MetricRecord(reply.metrics)
    if reply.arrays is not None:
        content["arrays"] = arrays(reply.arrays)
    if reply.error_record is not None:
        content["error"] = ConfigRecord(reply.error_record)
    return Message(content=RecordDict(content), metadata=metadata)


def metrics(**change: Any) -> Reply:
    values = {**GOOD_METRICS, **change}
    return Reply(metrics={k: v for k, v in values.items() if v is not MISSING})


MISSING = object()
OTHER = "<another client of the job>"


def case(reply: Reply, expected: str) -> tuple[Reply, str]:
    return reply, expected


R = "rejected report: "
# (reply, the stored event message); {node}, {me} and {other} are filled in per job.
CASES: dict[str, tuple[Reply, str]] = {
    "accuracy above 1": case(metrics(accuracy=1.5), R + "accuracy=1.5 is outside [0.0, 1.0]"),
    "accuracy whole 2": case(metrics(accuracy=2), R + "accuracy=2.0 is outside [0.0, 1.0]"),
    "accuracy negative": case(metrics(accuracy=-0.1), R + "accuracy=-0.1 is outside [0.0, 1.0]"),
    "accuracy NaN": case(metrics(accuracy=math.nan), R + "accuracy=nan is outside [0.0, 1.0]"),
    "accuracy inf": case(metrics(accuracy=math.inf), R + "accuracy=inf is outside [0.0, 1.0]"),
    "accuracy -inf": case(metrics(accuracy=-math.inf), R + "accuracy=-inf is outside [0.0, 1.0]"),
    "accuracy a list": case(
        metrics(accuracy=[0.5, 0.6]), R + "accuracy is missing or not a number ([0.5, 0.6])"
    ),
    "accuracy missing": case(
        metrics(accuracy=MISSING), R + "accuracy is missing or not a number (None)"
    ),
    "loss negative": case(metrics(loss=-1.0), R + "loss=-1.0 is outside [0.0, 1000000000.0]"),
    "loss NaN": case(metrics(loss=math.nan), R + "loss=nan is outside [0.0, 1000000000.0]"),
    "loss inf": case(metrics(loss=math.inf), R + "loss=inf is outside [0.0, 1000000000.0]"),
    "loss huge": case(metrics(loss=1e10), R + "loss=10000000000.0 is outside [0.0, 1000000000.0]"),
    "loss missing": case(metrics(loss=MISSING), R + "loss is missing or not a number (None)"),
    "loss a long list": case(
        metrics(loss=[0.1] * 10_000),
        R + f"loss is missing or not a number ({repr([0.1] * 10_000)[:39]}…)",
    ),
    "train_loss negative": case(
        metrics(train_loss=-0.5), R + "train_loss=-0.5 is outside [0.0, 1000000000.0]"
    ),
    "train_loss NaN": case(
        metrics(train_loss=math.nan), R + "train_loss=nan is outside [0.0, 1000000000.0]"
    ),
    "train_loss missing": case(
        metrics(train_loss=MISSING), R + "train_loss is missing or not a number (None)"
    ),
    "train_samples negative": case(
        metrics(train_samples=-1), R + "train_samples must be a non-negative whole number (-1)"
    ),
    "train_samples fractional": case(
        metrics(train_samples=2.5), R + "train_samples must be a non-negative whole number (2.5)"
    ),
    "train_samples zero": case(
        metrics(train_samples=0, **{"num-examples": 0}),
        R + "train_samples is 0: the client trained on nothing",
    ),
    "train_samples beyond a billion": case(
        metrics(train_samples=10**12),
        R + "train_samples must be a non-negative whole number (1000000000000)",
    ),
    "train_samples NaN": case(
        metrics(train_samples=math.nan),
        R + "train_samples must be a non-negative whole number (nan)",
    ),
    "train_samples a list": case(
        metrics(train_samples=[1, 2]),
        R + "train_samples must be a non-negative whole number ([1, 2])",
    ),
    "train_samples missing": case(
        metrics(train_samples=MISSING),
        R + "train_samples must be a non-negative whole number (None)",
    ),
    "test_samples negative": case(
        metrics(test_samples=-3), R + "test_samples must be a non-negative whole number (-3)"
    ),
    "test_samples fractional": case(
        metrics(test_samples=0.5), R + "test_samples must be a non-negative whole number (0.5)"
    ),
    "test_samples too many": case(
        metrics(test_samples=10**10),
        R + "test_samples must be a non-negative whole number (10000000000)",
    ),
    "test_samples missing": case(
        metrics(test_samples=MISSING),
        R + "test_samples must be a non-negative whole number (None)",
    ),
    "num-examples negative": case(
        metrics(**{"num-examples": -1}),
        R + "num-examples must be a non-negative whole number (-1)",
    ),
    "num-examples inflated to win the average": case(
        metrics(**{"num-examples": 10**6}),
        R + "num-examples=1000000 differs from train_samples=80",
    ),
    "train_seconds negative": case(
        metrics(train_seconds=-1.0), R + "train_seconds=-1.0 is outside [0.0, 604800.0]"
    ),
    "train_seconds inf": case(
        metrics(train_seconds=math.inf), R + "train_seconds=inf is outside [0.0, 604800.0]"
    ),
    "train_seconds beyond a week": case(
        metrics(train_seconds=1e9), R + "train_seconds=1000000000.0 is outside [0.0, 604800.0]"
    ),
    "an unknown metric": case(
        metrics(patient_ids=[17.0, 42.0]), R + "unknown metric(s) 'patient_ids'"
    ),
    "a huge metric name": case(metrics(**{"x" * 5000: 1.0}), R + f"unknown metric(s) '{'x' * 38}…"),
    "a hundred unknown metrics": case(
        metrics(**{f"m{i:03}": 1.0 for i in range(100)}),
        R + "unknown metric(s) 'm000', 'm001', 'm002', 'm003', 'm004' and 95 more",
    ),
    "an empty metrics record": case(
        Reply(metrics={}), R + "accuracy is missing or not a number (None)"
    ),
    "no metrics record": case(Reply(metrics=None), R + "reply has no metrics or no model"),
    "no model": case(Reply(arrays=None), R + "reply has no metrics or no model"),
    "a model with other layers": case(
        Reply(arrays=weights(w=(2, 3), c=(3,))),
        R + "returned model has different layers than the global model",
    ),
    "a model with an extra layer": case(
        Reply(arrays={**weights(), "extra": np.zeros(1, dtype=np.float32)}),
        R + "returned model has different layers than the global model",
    ),
    "a model with a wrong shape": case(
        Reply(arrays=weights(w=(3, 2), b=(3,))),
        R + "layer w has shape (3, 2), expected (2, 3)",
    ),
    "a model with NaN weights": case(
        Reply(arrays=weights(math.nan)), R + "layer w contains NaN or infinite weights"
    ),
    "a model with infinite weights": case(
        Reply(arrays=weights(math.inf)), R + "layer w contains NaN or infinite weights"
    ),
    "no client record": case(
        Reply(client={}), "rejected reply: node {node} answered for {me} but names no client_id"
    ),
    "another client's id (spoofing)": case(
        Reply(client={"client_id": OTHER}),
        "rejected reply: node {node} answered for {me} but claims to be {other}, "
        "another client of this job",
    ),
    "an id that is not in the job": case(
        Reply(client={"client_id": "client_deadbeef"}),
        "rejected reply: node {node} answered for {me} but claims client_id "
        "'client_deadbeef', which is not in this job",
    ),
    "a client_id of bytes": case(
        Reply(client={"client_id": b"client_1"}),
        "rejected reply: node {node} answered for {me} but claims client_id b'client_1', "
        "which is not in this job",
    ),
    "a client_id of 10 000 characters": case(
        Reply(client={"client_id": "c" * 10_000}),
        "rejected reply: node {node} answered for {me} but claims client_id "
        f"{repr('c' * 10_000)[:39]}…, which is not in this job",
    ),
    "a client_id as a list": case(
        Reply(client={"client_id": ["a", "b"]}),
        "rejected reply: node {node} answered for {me} but claims client_id ['a', 'b'], "
        "which is not in this job",
    ),
    "a reply from another node": case(
        Reply(from_node=999),
        "reply came from node 999, but the message went to node {node}",
    ),
    "a site's own error": case(
        Reply(error_record={"message": "dataset 'x' cannot be used: file is empty"}),
        "dataset 'x' cannot be used: file is empty",
    ),
    "a site's error of 100 000 characters": case(
        Reply(error_record={"message": "E" * 100_000}), "E" * tracking.MAX_REASON_LENGTH
    ),
    "a Flower error reply": case(
        Reply(flower_error=Error(code=5, reason="node unavailable")),
        "Flower error 5: node unavailable",
    ),
}


@pytest.fixture(autouse=True)
def serverapp_identity(monkeypatch):
    """What a ServerApp process has: messages it builds carry its run and node."""
    act_as_server_app(monkeypatch)


@pytest.fixture
def job(owner):
    return make_job(
        owner,
        sites=[("Site A", "ds"), ("Site B", "ds"), ("Site C", "ds")],
        status="running",
    )


def deliver(
    tracker: tracking.ClientTracker, client_id: str, node_id: int, reply: Reply
) -> Message | None:
    pushed = Pushed(client_id, node_id, ROUND, pushed_at=0.0)
    return update_client_tracking(
        tracker, pushed, message(reply, client_id, node_id), REFERENCE, 2.0
    )


@pytest.mark.parametrize(("reply", "expected"), CASES.values(), ids=CASES.keys())
def test_a_malformed_report_is_rejected_for_its_client_and_the_others_go_on(
    job, reply: Reply, expected: str
):
    bad, *others = list(job.clients_status)
    if reply.client is not None and reply.client.get("client_id") == OTHER:
        reply.client = {"client_id": others[0]}
    tracker = tracking.ClientTracker(job.pk)
    for client_id in job.clients_status:
        tracker.training(client_id, ROUND)

    results = [deliver(tracker, bad, NODES[0], reply)]
    results += [
        deliver(tracker, client_id, node, Reply())
        for client_id, node in zip(others, NODES[1:], strict=True)
    ]
    tracker.flush()

    assert results[0] is None
    assert all(result is not None for result in results[1:])  # FedAvg gets the others
    event = ClientEvent.objects.filter(job=job, client_id=bad, new_status="error").get()
    assert event.round == ROUND
    assert event.message == expected.format(node=NODES[0], me=bad, other=others[0])
    assert len(event.message) <= tracking.MAX_REASON_LENGTH
    stored = ClientRoundMetric.objects.filter(job=job, round=ROUND)
    assert sorted(stored.values_list("client_id", flat=True)) == sorted(others)
    job.refresh_from_db()
    statuses = {cid: entry["status"] for cid, entry in job.clients_status.items()}
    assert statuses == {bad: "error", others[0]: "reported", others[1]: "reported"}
    assert job.clients_status[bad]["accuracy"] is None  # nothing of the bad report stored


def test_a_good_report_is_stored_as_sent(job):
    client_id = next(iter(job.clients_status))
    tracker = tracking.ClientTracker(job.pk)
    tracker.training(client_id, ROUND)

    result = deliver(tracker, client_id, NODES[0], Reply())
    tracker.flush()

    assert result is not None
    assert result.content.metric_records["metrics"]["num-examples"] == 80
    row = ClientRoundMetric.objects.get(job=job, client_id=client_id)
    assert (row.accuracy, row.loss, row.train_samples, row.test_samples) == (0.9, 0.3, 80, 20)


# --- fuzzing the validator -------------------------------------------------------------------

metric_values = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(),
    st.floats(allow_nan=True, allow_infinity=True),
    st.text(max_size=20),
    st.lists(st.floats(), max_size=5),
    st.lists(st.integers(), max_size=5),
)
metric_names = st.one_of(st.sampled_from(sorted(tracking.KNOWN_METRICS)), st.text(max_size=30))


@settings(max_examples=500, deadline=None)
@given(st.dictionaries(metric_names, metric_values, max_size=10))
def test_the_validator_accepts_only_bounded_finite_reports(raw: dict[str, Any]):
    try:
        report = tracking.validate_report(raw)
    except tracking.ReportError as exc:
        assert str(exc)  # every refusal says why
        assert len(str(exc)) < tracking.MAX_REASON_LENGTH
        return
    assert set(raw) <= tracking.KNOWN_METRICS
    assert 0.0 <= report.accuracy <= 1.0
    for loss in (report.loss, report.train_loss):
        assert math.isfinite(loss) and 0.0 <= loss <= tracking.MAX_LOSS
    assert 1 <= report.train_samples <= tracking.MAX_SAMPLES
    assert 0 <= report.test_samples <= tracking.MAX_SAMPLES
    assert all(isinstance(n, int) for n in (report.train_samples, report.test_samples))


@settings(max_examples=300, deadline=None)
@given(
    accuracy=st.floats(0.0, 1.0),
    loss=st.floats(0.0, tracking.MAX_LOSS),
    train_loss=st.floats(0.0, tracking.MAX_LOSS),
    train_samples=st.integers(1, tracking.MAX_SAMPLES),
    test_samples=st.integers(0, tracking.MAX_SAMPLES),
)
def test_the_validator_accepts_every_report_in_range(
    accuracy: float, loss: float, train_loss: float, train_samples: int, test_samples: int
):
    report = tracking.validate_report(
        {
            "accuracy": accuracy,
            "loss": loss,
            "train_loss": train_loss,
            "train_samples": train_samples,
            "test_samples": test_samples,
            "num-examples": train_samples,
        }
    )

    assert report == tracking.RoundReport(accuracy, loss, train_loss, train_samples, test_samples)


def test_the_validator_refuses_something_that_is_not_a_record():
    for raw in ([("accuracy", 0.9)], "accuracy=0.9", None, 3):
        with pytest.raises(tracking.ReportError, match="metrics must be a record"):
            tracking.validate_report(raw)  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("value", "reason"),
    [
        ("0.9", "accuracy is missing or not a number ('0.9')"),
        (True, "accuracy is missing or not a number (True)"),
    ],
)
def test_the_validator_refuses_values_a_flower_record_cannot_carry(value, reason):
    with pytest.raises(tracking.ReportError) as refused:
        tracking.validate_report({**GOOD_METRICS, "accuracy": value})

    assert str(refused.value) == reason


def test_the_validator_takes_a_whole_float_count_as_a_whole_number():
    report = tracking.validate_report({**GOOD_METRICS, "train_samples": 80.0})

    assert report == tracking.RoundReport(0.9, 0.3, 0.2, 80, 20)
    assert isinstance(report.train_samples, int)
