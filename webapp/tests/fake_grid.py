"""A Flower Grid and a clock, faked, to drive a job's round loop in-process.

Time moves only when the loop sleeps. Each fake site answers identify queries and training
messages like the real ClientApp (after `train_seconds`), unless a test scripts otherwise;
tests change the federation at given moments (`at`): kill a node, start a new one for the
same site, cut a node off and heal it.
"""

import itertools
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from datetime import datetime, timedelta

from django.utils import timezone
from flwr.app import ConfigRecord, Error, Message, MessageType, Metadata, MetricRecord, RecordDict
from flwr.common.constant import HEARTBEAT_PATIENCE
from flwr.proto.node_pb2 import NodeInfo  # pylint: disable=E0611

from clients.protocol import NUM_EXAMPLES, ClientKey, Record, SiteKey, TrainConfig, site_key
from clients.tests.helpers import SERVER_APP_NODE

HEARTBEAT_INTERVAL = 30.0
SUPERLINK_NODE = SERVER_APP_NODE  # Flower's own error replies come from the SuperLink


class FakeClock:
    def __init__(self) -> None:
        self.elapsed = 0.0
        self.started = timezone.now()
        self.on_tick: Callable[[], None] = lambda: None

    def monotonic(self) -> float:
        return self.elapsed

    def now(self) -> datetime:
        return self.started + timedelta(seconds=self.elapsed)

    def sleep(self, seconds: float) -> None:
        self.elapsed += seconds
        self.on_tick()


@dataclass
class FakeSite:
    """A site as its ClientApp answers: `token` is the one its Connection holds."""

    name: str
    token: str
    train_seconds: float = 2.0
    # Replaces the reply to a training message: (message, its id, node id) -> (delay, reply),
    # or None for no reply at all.
    train: Callable[[Message, str, int], tuple[float, Message] | None] | None = None


@dataclass
class FakeNode:
    site: FakeSite
    online: bool = True  # in the SuperLink's node list
    answering: bool = True
    # When a frozen node last heartbeated (None: it heartbeats now); Flower lists such a node
    # as online until its heartbeats lapse, with `online_until` no longer moving.
    silent_since: float | None = None


@dataclass
class FakeGrid:
    clock: FakeClock
    nodes: dict[int, FakeNode] = field(default_factory=dict)
    pushed: dict[str, Message] = field(default_factory=dict)
    pushed_to: list[tuple[int, str]] = field(default_factory=list)  # (node, message type)
    _replies: list[tuple[float, Message]] = field(default_factory=list)
    _events: list[tuple[float, Callable[[], None]]] = field(default_factory=list)
    _ids: Iterable[int] = field(default_factory=itertools.count)

    def __post_init__(self) -> None:
        self.clock.on_tick = self._run_due_events

    # --- what the test scripts ---------------------------------------------------------

    def start_node(self, node_id: int, site: FakeSite) -> None:
        self.nodes[node_id] = FakeNode(site)

    def kill(self, node_id: int) -> None:
        """The node's processes die: it leaves the node list and never answers again."""
        self.nodes[node_id].online = False
        self._drop_replies_from(node_id)

    def _drop_replies_from(self, node_id: int) -> None:
        self._replies = [(t, r) for t, r in self._replies if r.metadata.src_node_id != node_id]

    def freeze(self, node_id: int) -> None:
        """The node stops answering but is still listed (its heartbeats have not yet lapsed)."""
        node = self.nodes[node_id]
        node.answering = False
        node.silent_since = self.clock.now().timestamp()
        self._drop_replies_from(node_id)

    def heal(self, node_id: int) -> None:
        """A cut-off node heartbeats again (what it was asked before the cut is lost)."""
        self.nodes[node_id].online = True

    def at(self, seconds: float, action: Callable[[], None]) -> None:
        self._events.append((seconds, action))

    def reply(
        self,
        to: Message,
        message_id: str,
        *,
        src_node_id: int,
        content: RecordDict | None = None,
        error: Error | None = None,
    ) -> Message:
        metadata = Metadata(
            run_id=1,
            message_id=f"reply-{message_id}",
            src_node_id=src_node_id,
            dst_node_id=0,
            reply_to_message_id=message_id,
            group_id=to.metadata.group_id,
            created_at=time.time(),
            ttl=600.0,
            message_type=to.metadata.message_type,
        )
        if error is not None:
            return Message(metadata=metadata, error=error)
        return Message(metadata=metadata, content=content)

    def trained(self, message: Message, message_id: str, node_id: int) -> Message:
        """What the real ClientApp answers: the model it got back, metrics, its client id."""
        config = TrainConfig.from_config(message.content[Record.CONFIG])
        site = self.nodes[node_id].site
        metrics = MetricRecord(
            {
                NUM_EXAMPLES: 80,
                "train_loss": 0.4,
                "loss": 0.3,
                "accuracy": 0.9,
                "train_samples": 80,
                "test_samples": 20,
                "train_seconds": 1.0,
            }
        )
        client = ConfigRecord(
            {
                ClientKey.CLIENT_ID: config.client_id,
                ClientKey.SITE_KEY: site_key(site.token),
                ClientKey.DATASET_NAME: config.dataset_name,
            }
        )
        content = RecordDict(
            {
                Record.ARRAYS: message.content[Record.ARRAYS],
                Record.METRICS: metrics,
                Record.CLIENT: client,
            }
        )
        return self.reply(message, message_id, src_node_id=node_id, content=content)

    # --- the Grid calls the round loop makes -------------------------------------------

    def get_nodes(self) -> list[NodeInfo]:
        self._run_due_events()
        now = self.clock.now().timestamp()  # every heartbeating node has just heartbeaten
        return [
            NodeInfo(
                node_id=node_id,
                online_until=(node.silent_since or now) + HEARTBEAT_PATIENCE * HEARTBEAT_INTERVAL,
                heartbeat_interval=HEARTBEAT_INTERVAL,
            )
            for node_id, node in self.nodes.items()
            if node.online
        ]

    def push_messages(self, messages: Iterable[Message]) -> list[str]:
        self._run_due_events()
        ids = []
        for message in messages:
            message_id = f"m{next(self._ids)}"
            ids.append(message_id)
            self.pushed[message_id] = message
            node_id = message.metadata.dst_node_id
            self.pushed_to.append((node_id, message.metadata.message_type))
            node = self.nodes.get(node_id)
            if node is None or not node.online or not node.answering:
                continue
            answer = self._answer(message, message_id, node_id, node.site)
            if answer is not None:
                delay, reply = answer
                self._replies.append((self.clock.monotonic() + delay, reply))
        return ids

    def pull_messages(self, message_ids: Iterable[str]) -> list[Message]:
        self._run_due_events()
        wanted = set(message_ids)
        now = self.clock.monotonic()
        due = [r for t, r in self._replies if t <= now and r.metadata.reply_to_message_id in wanted]
        self._replies = [(t, r) for t, r in self._replies if not any(r is d for d in due)]
        return due

    def _answer(
        self, message: Message, message_id: str, node_id: int, site: FakeSite
    ) -> tuple[float, Message] | None:
        if message.metadata.message_type == MessageType.QUERY:
            record = ConfigRecord({SiteKey.NAME: site.name, SiteKey.KEY: site_key(site.token)})
            content = RecordDict({Record.SITE: record})
            return 0.5, self.reply(message, message_id, src_node_id=node_id, content=content)
        if site.train is not None:
            return site.train(message, message_id, node_id)
        return site.train_seconds, self.trained(message, message_id, node_id)

    def _run_due_events(self) -> None:
        now = self.clock.monotonic()
        due = [action for t, action in self._events if t <= now]
        self._events = [(t, a) for t, a in self._events if t > now]
        for action in due:
            action()
