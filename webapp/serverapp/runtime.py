"""What the round loop needs from its surroundings, as interfaces: Flower's Grid (only the
calls the loop makes) and a clock. The ServerApp passes the real ones; tests pass fakes and
drive a whole job in-process, with time that moves only when the loop sleeps."""

import time
from collections.abc import Iterable, Sequence
from datetime import UTC, datetime
from typing import Protocol

from django.utils import timezone
from flwr.app import Message
from flwr.common.constant import HEARTBEAT_PATIENCE
from flwr.proto.node_pb2 import NodeInfo  # pylint: disable=E0611


class JobGrid(Protocol):
    """The part of `flwr.serverapp.Grid` a job uses."""

    def push_messages(self, messages: Iterable[Message]) -> Iterable[str]: ...

    def pull_messages(self, message_ids: Iterable[str]) -> Iterable[Message]: ...

    def get_nodes(self) -> Sequence[NodeInfo]: ...


class Clock(Protocol):
    def monotonic(self) -> float:
        """Seconds for deadlines and intervals: never goes back."""
        ...

    def now(self) -> datetime:
        """Wall time (aware), for what is stored and compared with Flower's heartbeats."""
        ...

    def sleep(self, seconds: float) -> None: ...


class SystemClock:
    def monotonic(self) -> float:
        return time.monotonic()

    def now(self) -> datetime:
        return timezone.now()

    def sleep(self, seconds: float) -> None:
        time.sleep(seconds)


def last_heartbeat(node: NodeInfo) -> datetime:
    """When the SuperLink last heard the node's heartbeat: each one moves `online_until` to
    that moment plus HEARTBEAT_PATIENCE intervals."""
    return datetime.fromtimestamp(
        node.online_until - HEARTBEAT_PATIENCE * node.heartbeat_interval, UTC
    )
