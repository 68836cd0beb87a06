"""Which of the job's clients are alive, from two sources: each site's health, asked every
few seconds by a background thread (`SiteProber`), and Flower's own heartbeats, read from the
SuperLink's node list by the round loop (`LivenessMonitor.check_heartbeats`).

A client whose node left the SuperLink, or whose site has been known down for longer than
CLIENT_TIMEOUT_THRESHOLD, is lost (`offline`) and alerts are sent; the same node heartbeating
again later is a healed partition and the client is `connected` again.
"""

import logging
import threading
from collections.abc import Callable, Collection, Mapping
from concurrent.futures import ThreadPoolExecutor
from datetime import datetime

from django import db
from flwr.proto.node_pb2 import NodeInfo  # pylint: disable=E0611

from webapp import alerts, sites
from webapp.models import Connection
from webapp.serverapp.nodes import ClientSlot
from webapp.serverapp.runtime import Clock, last_heartbeat
from webapp.tracking import ClientTracker
from webapp.tracking.status import NOT_WATCHED, UNUSABLE, ClientStatus

logger = logging.getLogger(__name__)

HEALTHY = sites.Health()


class SiteProber:
    """Asks each site of the job for its health every few seconds, in a thread of its own: a
    slow site API never delays recording a reply, and liveness is recorded even while the
    round loop is blocked pulling a large reply.

    `health` is written by this thread only; the round loop only reads it.
    """

    def __init__(
        self,
        connections: list[Connection],
        interval: float,
        clock: Clock,
        on_health: Callable[[], None] = lambda: None,
    ) -> None:
        self.connections = connections
        self.interval = interval
        self.clock = clock
        self.on_health = on_health
        # connection id -> (when asked, its health); absent until first asked.
        self.health: dict[int, tuple[datetime, sites.Health]] = {}
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._loop, daemon=True, name="site-prober")

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()

    def _loop(self) -> None:
        with ThreadPoolExecutor(max_workers=min(8, len(self.connections) or 1)) as pool:
            while not self._stop.is_set():
                asked_at = self.clock.now()  # the site was alive no later than this
                results = pool.map(sites.site_health, self.connections)
                for connection, health in zip(self.connections, results, strict=True):
                    self.health[connection.pk] = (asked_at, health)
                try:
                    self.on_health()
                except Exception:  # liveness must never stop; the round loop goes on
                    logger.exception("recording site health failed")
                self._stop.wait(self.interval)
        db.connection.close()  # this thread's own database connection


class LivenessMonitor:
    """Decides, from site health and Flower's heartbeats, which clients are alive or lost.

    Two threads use it: the round loop (`refresh`, `check_heartbeats`, `lose`, `found`, `beat`)
    and the site prober (`sites_alive`). Each shared value has one writer and is replaced
    whole, never changed in place, so the other thread reads an old or a new value, never a
    half-written one: `online`, `_loop_beat` and `_second_supernode` (and each
    `ClientSlot.node_id`) are written by the round loop only, `SiteProber.health` by the prober
    only. The tracker has its own lock. `_lost_at`, `_found_at` and `_alerted_alive` belong to
    the round loop alone.
    """

    def __init__(
        self,
        tracker: ClientTracker,
        clients: Mapping[str, ClientSlot],
        *,
        min_clients: int,
        timeout_threshold: float,
        round_timeout: float,
        clock: Clock,
        alert: Callable[..., object],
        prober: SiteProber | None = None,
    ) -> None:
        self.tracker = tracker
        self.clients = clients
        self.min_clients = min_clients
        self.timeout_threshold = timeout_threshold
        self.round_timeout = round_timeout
        self.clock = clock
        self.alert = alert  # alert(event, **details): one webhook call
        self.prober = prober
        self.online: dict[int, NodeInfo] = {}  # the SuperLink's online nodes, last asked
        self._loop_beat = clock.monotonic()
        self._lost_at: dict[str, datetime] = {}
        # When each client's site last identified a node: a health answer from before that
        # says nothing about the node serving it now.
        self._found_at: dict[str, datetime] = {}
        self._alerted_alive: int | None = None
        # client id -> why its site's rows warn of a second SuperNode answering as that site.
        self._second_supernode: dict[str, str] = {}

    def beat(self) -> None:
        """The round loop is turning (not stuck inside a Flower call)."""
        self._loop_beat = self.clock.monotonic()

    def refresh(self, nodes: list[NodeInfo]) -> None:
        self.online = {node.node_id: node for node in nodes}

    def usable(self) -> list[ClientSlot]:
        """Clients that may be sent a round: on an online node, neither failed nor lost."""
        online = self.online
        return [
            client
            for client in self.clients.values()
            if client.node_id is not None
            and client.node_id in online
            and self.tracker.statuses.get(client.client_id) not in UNUSABLE
        ]

    def second_supernode(self, clients: Collection[ClientSlot], problem: str | None) -> None:
        """Shown with each site problem of these clients from now on (None: no longer)."""
        ids = {client.client_id for client in clients}
        kept = {cid: text for cid, text in self._second_supernode.items() if cid not in ids}
        self._second_supernode = kept | ({cid: problem for cid in ids} if problem else {})

    def _site_problem(self, client: ClientSlot, health: sites.Health) -> None:
        problem = "; ".join(
            filter(None, [health.problem, self._second_supernode.get(client.client_id)])
        )
        self.tracker.site_problem(client.client_id, problem or None, health.down)

    def found(self, client_id: str) -> None:
        """The client's site identified itself on a node: any earlier loss is over."""
        self._lost_at.pop(client_id, None)
        self._found_at[client_id] = self.clock.now()

    def _health(
        self, client: ClientSlot, default_at: datetime | None
    ) -> tuple[datetime | None, sites.Health]:
        """When the site was last asked and what it said (`default_at` and healthy if not yet)."""
        if self.prober is None:
            return default_at, HEALTHY
        return self.prober.health.get(client.connection_id, (default_at, HEALTHY))

    def sites_alive(self) -> None:
        """From the prober's thread: what each site says is shown on its clients' rows as soon
        as it is known (a dead site is flagged within one probe, not one node check later),
        and healthy sites whose node is online are alive now."""
        online = self.online
        for client in self.clients.values():
            status = self.tracker.statuses.get(client.client_id)
            if client.node_id is None or status in NOT_WATCHED:
                continue
            asked_at, health = self._health(client, None)
            self._site_problem(client, health)
            if status == ClientStatus.OFFLINE or client.node_id not in online:
                continue  # only the round loop decides about lost or rejoining clients
            if asked_at is not None and not health.down:
                self.tracker.seen(client.client_id, asked_at)
        # A round loop stuck inside Flower (its pull retries for hours when the SuperLink's state
        # is locked) stops the job's heartbeat, so the web app fails the job with a reason.
        if self.clock.monotonic() - self._loop_beat <= self.round_timeout:
            self.tracker.server_alive()
        self.tracker.flush_if_due()

    def check_heartbeats(
        self, server_round: int, in_round: Collection[str] = ()
    ) -> list[ClientSlot]:
        """`last_seen` from the site's health and Flower's heartbeats; returns the clients
        lost now: their node left the SuperLink, their site has been known down longer than
        the threshold, or (for the clients in `in_round`, still awaited this round) their
        site says its SuperNode is not running — it took the round's work down with it."""
        wall = self.clock.now()
        lost = []
        for client in self.clients.values():
            status = self.tracker.statuses.get(client.client_id)
            if client.node_id is None or status in NOT_WATCHED:
                continue
            asked_at, health = self._health(client, wall)
            problem = health.problem
            self._site_problem(client, health)
            found_at = self._found_at.get(client.client_id)
            if (
                health.supernode_stopped
                and client.client_id in in_round
                and status != ClientStatus.OFFLINE
                and (found_at is None or asked_at > found_at)
            ):
                # Flower keeps the dead node online for a minute, and the site restarts its
                # SuperNode as a new node: waiting for either would hide the lost round.
                self.lose(
                    client, server_round, f"{problem}; its work in round {server_round} is lost"
                )
                lost.append(client)
                continue
            node = self.online.get(client.node_id)
            if node is None:
                if status != ClientStatus.OFFLINE:
                    self.lose(
                        client,
                        server_round,
                        f"node {client.node_id} left the Flower SuperLink (missed heartbeats)"
                        + (f"; {problem}" if problem else ""),
                    )
                    lost.append(client)
                continue
            heartbeat = last_heartbeat(node)
            if not health.down:  # healthy, or no answer in time: Flower's node list decides
                self.tracker.seen(client.client_id, asked_at)
                lost_at = self._lost_at.get(client.client_id)
                if status == ClientStatus.OFFLINE and lost_at and heartbeat > lost_at:
                    # A partition healed: the same node heartbeats again after it was lost.
                    del self._lost_at[client.client_id]
                    self.tracker.connected(
                        client.client_id,
                        client.node_id,
                        server_round,
                        f"node {client.node_id} is reachable again",
                    )
                continue
            # The site is known down: only Flower's own heartbeat still counts.
            self.tracker.seen(client.client_id, heartbeat)
            last_seen = self.tracker.last_seen(client.client_id) or wall
            silent = (wall - last_seen).total_seconds()
            if silent > self.timeout_threshold and status != ClientStatus.OFFLINE:
                self.lose(
                    client, server_round, f"{problem}; no heartbeat or reply for {silent:.0f} s"
                )
                lost.append(client)
        return lost

    def lose(self, client: ClientSlot, server_round: int, reason: str) -> None:
        """Record the client lost, alert, and warn when the job nears its minimum."""
        self._lost_at[client.client_id] = self.clock.now()
        self.tracker.lost(client.client_id, server_round, reason)
        self.alert(
            alerts.CLIENT_OFFLINE,
            client_id=client.client_id,
            site=client.site_name,
            round=server_round,
            reason=reason,
        )
        alive = len(self.usable())
        if alive <= self.min_clients and alive != self._alerted_alive:
            self._alerted_alive = alive
            self.alert(
                alerts.BELOW_MIN_CLIENTS_RISK,
                alive_clients=alive,
                min_clients=self.min_clients,
                round=server_round,
            )
