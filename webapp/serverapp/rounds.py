"""The round loop of one job: wait for the job's sites to identify their nodes, then run each
round on this job's usable clients only — push one message per client, record each reply the
moment it arrives, give up on the rest at the round's deadline — and save the final model.

Everything outside (Flower's Grid, the clock) is passed in, so tests drive a whole job
in-process with a fake grid and a clock that moves only when the loop sleeps.
"""

from pathlib import Path

from flwr.app import ArrayRecord, Message
from flwr.common.constant import ErrorCode

from webapp.server_fn.strategies import Pushed, update_client_tracking
from webapp.serverapp.aggregation import Aggregation
from webapp.serverapp.liveness import LivenessMonitor
from webapp.serverapp.model import initial_arrays, save_model
from webapp.serverapp.nodes import ClientSlot, NodeChange, NodeDirectory, Replacement
from webapp.serverapp.plan import JobPlan, Timeouts
from webapp.serverapp.runtime import Clock, JobGrid
from webapp.tracking import ClientTracker
from webapp.tracking.status import UNUSABLE, ClientStatus

POLL_SECONDS = 0.25


class JobFailed(Exception):
    """The job cannot go on; the message names the clients and the reason."""


class JobRunner:
    """Runs one job's rounds from the ServerApp's main thread."""

    def __init__(
        self,
        grid: JobGrid,
        plan: JobPlan,
        tracker: ClientTracker,
        aggregation: Aggregation,
        directory: NodeDirectory,
        liveness: LivenessMonitor,
        *,
        timeouts: Timeouts,
        clock: Clock,
        model_dir: Path,
    ) -> None:
        self.grid = grid
        self.plan = plan
        self.tracker = tracker
        self.aggregation = aggregation
        self.directory = directory
        self.clients = directory.clients
        self.liveness = liveness
        self.timeouts = timeouts
        self.clock = clock
        self.model_dir = model_dir
        self.server_round = 0
        self.model_file: Path | None = None
        self.pushed: dict[str, Pushed] = {}  # this round's messages still awaiting a reply
        # Clients whose site rejoined on a new node while they were in the round: `offline`
        # for the rest of it (its work is lost), `connected` when it ends.
        self._rejoined: dict[str, str] = {}  # client id -> the rejoin's reason
        self._last_node_check = float("-inf")

    # --- watching nodes: identity, heartbeats, rejoin -------------------------------------

    def watch(self) -> None:
        """Called on every poll of the job's loop, in every phase of the job."""
        self.liveness.beat()
        for change in self.directory.pull_answers():
            self._node_changed(change)
        now = self.clock.monotonic()
        if now - self._last_node_check >= self.timeouts.node_check:
            self._last_node_check = now
            self.liveness.refresh(list(self.grid.get_nodes()))
            # A site whose SuperNode restarted comes back as a new node: asking every new
            # node lets its clients rejoin at the next round.
            self.directory.ask_new_nodes(self.liveness.online)
            found, stopped = self.directory.second_supernodes(
                self.liveness.online, margin=self.timeouts.node_check
            )
            for replacement in found:
                self._second_supernode(replacement)
            for replacement in stopped:  # the warning is over
                clients = self.directory.site_clients(replacement.site_key)
                self.liveness.second_supernode(clients, None)
            in_round = {sent.client_id for sent in self.pushed.values()}
            for client in self.liveness.check_heartbeats(self.server_round, in_round):
                self._drop_pushed(client.client_id)
            self.tracker.server_alive()
        self.tracker.flush_if_due()

    def _node_changed(self, change: NodeChange) -> None:
        client, old, node_id = change.client, change.old_node_id, change.node_id
        self.liveness.found(client.client_id)
        if old is None:
            self.tracker.connected(client.client_id, node_id, self.server_round)
            return
        # Another node answered as the site: whatever its old node was doing is lost.
        in_round = any(sent.client_id == client.client_id for sent in self.pushed.values())
        self._drop_pushed(client.client_id)
        if self.tracker.statuses.get(client.client_id) != ClientStatus.OFFLINE:
            lost_work = f"; its work in round {self.server_round} is lost" if in_round else ""
            self.tracker.lost(
                client.client_id,
                self.server_round,
                f"node {node_id} answered as this site in place of node {old} (its SuperNode "
                "restarted, or a second one runs with this site's token)" + lost_work,
            )
        rejoined = (
            f"site {client.site_name} rejoined as node {node_id} (was node {old}); "
            "it trains again from the next round"
        )
        if in_round or client.client_id in self._rejoined:
            # Shown `connected` now, the lost round would never be seen (both land in one
            # flush): it stays `offline` until the round it missed is over.
            self._rejoined[client.client_id] = rejoined
            return
        self.tracker.connected(client.client_id, node_id, self.server_round, rejoined)

    def _second_supernode(self, replacement: Replacement) -> None:
        """The replaced node still heartbeats: two SuperNodes answer as one site. The job goes
        on with the newer node (the old one is never asked anything again); the user is told
        on the site's clients' timelines and rows."""
        old, new = replacement.old_node_id, replacement.node_id
        problem = (
            f"two SuperNodes answer as site {replacement.site_name}: node {old} and node {new}; "
            f"the job uses node {new} and ignores node {old} — stop the extra SuperNode"
        )
        clients = self.directory.site_clients(replacement.site_key)
        for client in clients:
            self.tracker.note(client.client_id, self.server_round, problem)
        self.liveness.second_supernode(clients, problem)

    def _drop_pushed(self, client_id: str) -> None:
        self.pushed = {
            message_id: sent
            for message_id, sent in self.pushed.items()
            if sent.client_id != client_id
        }

    # --- identifying the job's nodes ---------------------------------------------------

    def identify_nodes(self) -> None:
        """Wait until every site of the job has a node, or the node wait timeout."""
        deadline = self.clock.monotonic() + self.timeouts.node_wait
        while self.directory.unidentified():
            if self.clock.monotonic() > deadline:
                break
            self.watch()
            self.clock.sleep(POLL_SECONDS)
        for client in self.directory.unidentified():
            self.tracker.failed(
                client.client_id,
                0,
                f"site {client.site_name} did not connect: no Flower node identified "
                f"itself as this site within {self.timeouts.node_wait:.0f} s "
                "(is its SuperNode running?)",
            )
        self.tracker.flush()

    # --- rounds ------------------------------------------------------------------------

    def run(self) -> None:
        self.identify_nodes()
        arrays = initial_arrays(self.plan)
        for server_round in range(1, self.plan.total_rounds + 1):
            self.server_round = server_round
            self._last_node_check = float("-inf")  # fresh node list for choosing the round
            self.watch()
            active = self.liveness.usable()
            self._require_clients(len(active), f"before round {server_round}")
            # The job's round is the one in progress, written with the round's first flush.
            self.tracker.job(current_round=server_round)
            replies = self.run_round(server_round, arrays, active)
            self._require_clients(len(replies), f"in round {server_round}")
            new_arrays = self.aggregation.aggregate_train(server_round, replies)
            if new_arrays is None:
                raise JobFailed(f"round {server_round}: nothing to aggregate")
            arrays = new_arrays
            self.tracker.round_ended(server_round)
            self.tracker.flush()
        self.model_file = save_model(self.plan, arrays, self.server_round, self.model_dir)

    def _require_clients(self, available: int, when: str) -> None:
        if available >= self.plan.min_clients:
            return
        statuses = self.tracker.statuses
        failing = [
            f"{c.site_name}/{c.dataset_name} ({statuses.get(c.client_id)})"
            for c in self.clients.values()
            if statuses.get(c.client_id) in UNUSABLE or c.node_id is None
        ]
        raise JobFailed(
            f"only {available} client(s) usable {when}, fewer than min_clients="
            f"{self.plan.min_clients}; failing: {', '.join(failing) or 'none'} "
            "(see each client's reason on the dashboard)"
        )

    def run_round(
        self, server_round: int, arrays: ArrayRecord, clients: list[ClientSlot]
    ) -> list[Message]:
        """Push one message per client, record each reply as it arrives, stop at the deadline."""
        outgoing = self.aggregation.configure_train(server_round, arrays, clients)
        pushed_at = self.clock.monotonic()
        ids = list(self.grid.push_messages([message for _, message in outgoing]))
        self.pushed = {}
        for message_id, (client, _) in zip(ids, outgoing, strict=True):
            self.pushed[message_id] = Pushed(
                client.client_id, client.node_id, server_round, pushed_at
            )
            self.tracker.training(client.client_id, server_round)
        self.tracker.flush()
        good: list[Message] = []
        deadline = pushed_at + self.timeouts.round
        while self.pushed and self.clock.monotonic() < deadline:
            for reply in self.grid.pull_messages(list(self.pushed)):
                sent = self.pushed.pop(reply.metadata.reply_to_message_id, None)
                if sent is None:
                    continue
                if reply.has_error() and reply.error.code == ErrorCode.NODE_UNAVAILABLE:
                    # Flower gave up on the node (frozen, cut off): that is offline, not a
                    # fault of the client, and it may come back.
                    self.liveness.lose(
                        self.clients[sent.client_id],
                        server_round,
                        f"Flower could not reach node {sent.node_id} in round {server_round}: "
                        f"{reply.error.reason}",
                    )
                    self._drop_pushed(sent.client_id)
                    continue
                result = update_client_tracking(
                    self.tracker, sent, reply, arrays, self.clock.monotonic() - sent.pushed_at
                )
                if result is not None:
                    good.append(result)
            self.watch()
            if self.pushed:
                self.clock.sleep(POLL_SECONDS)
        for sent in self.pushed.values():
            self.tracker.failed(
                sent.client_id,
                server_round,
                f"no reply within the round timeout ({self.timeouts.round:.0f} s)",
            )
        self.pushed = {}
        for client_id, reason in self._rejoined.items():
            client = self.clients[client_id]
            if client.node_id is not None:
                self.tracker.connected(client_id, client.node_id, server_round, reason)
        self._rejoined = {}
        return good
