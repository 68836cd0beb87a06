"""Which Flower node serves which of the job's clients.

Flower only knows random node ids. Every node that comes online is asked once which site it
is (an identify query; the ClientApp answers with its site's key), and every client of that
site is served by that node from then on. A site whose SuperNode restarted comes back as a
new node: the answer moves its clients to the new node, and the old node is never sent a
message again. The old node is remembered: one that still heartbeats after the switch is a
second SuperNode running with the site's token, not a restart.
"""

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import datetime, timedelta

from flwr.app import ConfigRecord, Message, MessageType, RecordDict
from flwr.proto.node_pb2 import NodeInfo  # pylint: disable=E0611

from clients.protocol import ACTION_KEY, IDENTIFY, Record, SiteKey
from webapp.serverapp.runtime import Clock, JobGrid, last_heartbeat


@dataclass
class ClientSlot:
    """One client of the job: which site serves it, on which Flower node, with which data.

    `node_id` is written only by the round loop's thread (through `NodeDirectory`); the site
    prober's thread only reads it.
    """

    client_id: str
    connection_id: int
    site_name: str
    site_key: str
    dataset_name: str
    node_id: int | None = None


@dataclass(frozen=True)
class NodeChange:
    """A client is served by a node it was not served by before (`old_node_id` None: its
    first node; otherwise another node answered as its site)."""

    client: ClientSlot
    old_node_id: int | None
    node_id: int


@dataclass(frozen=True)
class Replacement:
    """Node `node_id` answered as site `site_name` in place of `old_node_id`, at `at` (wall
    time): the site's SuperNode restarted, or a second one runs with the site's token."""

    site_key: str
    site_name: str
    old_node_id: int
    node_id: int
    at: datetime


class NodeDirectory:
    """Owns the mapping node id ↔ site ↔ clients. Used from the round loop's thread only."""

    def __init__(self, grid: JobGrid, clients: Iterable[ClientSlot], clock: Clock) -> None:
        self.grid = grid
        self.clock = clock
        self.clients = {client.client_id: client for client in clients}
        self._by_site_key: dict[str, list[ClientSlot]] = {}
        for client in self.clients.values():
            self._by_site_key.setdefault(client.site_key, []).append(client)
        self._asked: dict[str, int] = {}  # identify message id -> the node it went to
        self._asked_nodes: set[int] = set()
        # Old node id -> how it was replaced, until it is known a restart or a second SuperNode.
        self._replaced: dict[int, Replacement] = {}
        self._second: dict[int, Replacement] = {}  # the second SuperNodes, while they run

    def ask_new_nodes(self, online: Iterable[int]) -> None:
        """Ask each node not asked before which site it is."""
        new_nodes = sorted(set(online) - self._asked_nodes)
        if not new_nodes:
            return
        query = RecordDict({Record.CONFIG: ConfigRecord({ACTION_KEY: IDENTIFY})})
        messages = [
            Message(
                content=query,
                dst_node_id=node_id,
                message_type=MessageType.QUERY,
                group_id=IDENTIFY,
            )
            for node_id in new_nodes
        ]
        ids = list(self.grid.push_messages(messages))
        self._asked.update(zip(ids, new_nodes, strict=True))
        self._asked_nodes.update(new_nodes)

    def pull_answers(self) -> list[NodeChange]:
        """The clients that the answers received so far move to a new node."""
        if not self._asked:
            return []
        changes = []
        for reply in self.grid.pull_messages(list(self._asked)):
            node_id = self._asked.pop(reply.metadata.reply_to_message_id, None)
            if node_id is None or reply.has_error() or reply.metadata.src_node_id != node_id:
                continue
            site = reply.content.config_records.get(Record.SITE)
            site_key = site.get(SiteKey.KEY) if site is not None else None
            if not isinstance(site_key, str):
                continue
            for client in self._by_site_key.get(site_key, []):
                if client.node_id != node_id:
                    if client.node_id is not None:
                        self._replaced[client.node_id] = Replacement(
                            site_key, client.site_name, client.node_id, node_id, self.clock.now()
                        )
                    changes.append(NodeChange(client, client.node_id, node_id))
                    client.node_id = node_id
        return changes

    def second_supernodes(
        self, online: Mapping[int, NodeInfo], margin: float
    ) -> tuple[list[Replacement], list[Replacement]]:
        """The replaced nodes found to be second SuperNodes answering as their site since the
        last call, and those of them that have left the SuperLink since (stopped).

        A replaced node is a second SuperNode once it heartbeats later than `margin` seconds
        after the switch. Flower lists a dead node as online for about a minute, so being
        listed proves nothing; a replaced node that leaves the node list silent was a restart
        and is forgotten."""
        found = []
        for old_node_id, replacement in list(self._replaced.items()):
            node = online.get(old_node_id)
            if node is not None and last_heartbeat(node) <= replacement.at + timedelta(
                seconds=margin
            ):
                continue  # silent since the switch, so far
            del self._replaced[old_node_id]
            if node is not None:
                found.append(replacement)
                self._second[old_node_id] = replacement
        stopped = [second for node_id, second in self._second.items() if node_id not in online]
        for second in stopped:
            del self._second[second.old_node_id]
        return found, stopped

    def site_clients(self, site_key: str) -> list[ClientSlot]:
        return list(self._by_site_key.get(site_key, []))

    def unidentified(self) -> list[ClientSlot]:
        return [client for client in self.clients.values() if client.node_id is None]
