"""start_flower_server: what the ServerApp runs for one job (the seed's name).

The SuperLink spawns one ServerApp process per Flower run; the run's config carries the job
id. The process inherits the SuperLink's environment (DJANGO_SETTINGS_MODULE, DATABASE_URL),
so it reads the job and writes tracking through the Django ORM (Django is set up by the thin
entry point flower_app/fedtrack_app/server_app.py).

Flow: identify which online nodes are this job's sites (each ClientApp answers a query with
its site's key), then run rounds only on those nodes, recording every reply the moment it
arrives, with a deadline per round so a dead site never blocks the job.
"""

import logging
import threading
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime
from pathlib import Path

import torch
from django import db
from django.conf import settings
from django.utils import timezone
from flwr.app import ArrayRecord, ConfigRecord, Context, Message, MessageType, RecordDict
from flwr.common.constant import HEARTBEAT_PATIENCE, ErrorCode
from flwr.proto.node_pb2 import NodeInfo  # pylint: disable=E0611
from flwr.serverapp import Grid, ServerApp

from clients.task import build_model
from webapp import alerts, jobs, sites, tracking
from webapp.models import Connection, TrainingJob
from webapp.server_fn.strategies import (
    ClientSlot,
    FedAvgModelStrategy,
    Pushed,
    update_client_tracking,
)

logger = logging.getLogger(__name__)
app = ServerApp()

POLL_SECONDS = 0.25
# How often nodes and sites are checked: several times per CLIENT_TIMEOUT_THRESHOLD, so a
# healthy client's last_seen never gets near it (at most 5 s: each check may write).
MAX_NODE_CHECK_SECONDS = 5.0
IDENTIFY_GROUP = "identify"
HEALTHY = sites.Health()


class JobFailed(Exception):
    """The job cannot go on; the message names the clients and the reason."""


@app.main()
def main(grid: Grid, context: Context) -> None:
    start_flower_server(grid, context)


def start_flower_server(grid: Grid, context: Context) -> None:
    job_id = int(context.run_config.get("job-id", 0))
    job = TrainingJob.objects.filter(pk=job_id).first()
    if job is None:
        logger.error("run %s names job %s, which does not exist", grid.run.run_id, job_id)
        return
    if not jobs.mark_running(job_id):
        logger.warning("job %s is %s; not running it", job_id, job.status)
        return
    tracker = tracking.ClientTracker(job_id)
    runner = JobRunner(
        grid,
        job,
        tracker,
        train_sleep=float(context.run_config.get("train-sleep", 0.0)),
        train_sleep_site=str(context.run_config.get("train-sleep-site", "")),
    )
    try:
        runner.run()
    except Exception as exc:  # the job must end with a reason, whatever went wrong
        reason = str(exc) if isinstance(exc, JobFailed) else f"server error: {exc!r}"
        if not isinstance(exc, JobFailed):
            logger.exception("job %s crashed", job_id)
        jobs.end_job_early(
            job_id,
            TrainingJob.Status.FAILED,
            reason,
            runner.server_round,
            client_reason=f"job failed: {reason}",
            tracker=tracker,
        )
        return
    finally:
        runner.close()
    tracker.finish_clients(tracking.COMPLETED, runner.server_round)
    tracker.job(current_round=runner.server_round, model_file=str(runner.model_file or ""))
    tracker.flush()
    jobs.finish_job(job_id, TrainingJob.Status.COMPLETED)


class SiteProber:
    """Asks each site of the job for its health every few seconds, in the background: a slow
    site API never delays recording a reply, and liveness is recorded even while the round
    loop is blocked pulling a large reply."""

    def __init__(
        self,
        connections: list[Connection],
        interval: float,
        on_health: Callable[[], None] = lambda: None,
    ) -> None:
        self.connections = connections
        self.interval = interval
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
                asked_at = timezone.now()  # the site was alive no later than this
                results = pool.map(sites.site_health, self.connections)
                for connection, health in zip(self.connections, results, strict=True):
                    self.health[connection.pk] = (asked_at, health)
                try:
                    self.on_health()
                except Exception:  # liveness must never stop; the round loop goes on
                    logger.exception("recording site health failed")
                self._stop.wait(self.interval)
        db.connection.close()  # this thread's own database connection


class JobRunner:
    def __init__(
        self,
        grid: Grid,
        job: TrainingJob,
        tracker: tracking.ClientTracker,
        *,
        train_sleep: float = 0.0,
        train_sleep_site: str = "",
        node_wait_timeout: float | None = None,
        round_timeout: float | None = None,
    ) -> None:
        self.grid = grid
        self.job = job
        self.tracker = tracker
        self.node_wait_timeout = node_wait_timeout or settings.JOB_NODE_WAIT_TIMEOUT
        self.round_timeout = round_timeout or settings.JOB_ROUND_TIMEOUT
        self.server_round = 0
        self.model_file: Path | None = None
        cfg = job.model_config
        connections = Connection.objects.in_bulk(
            {c["connection_id"] for c in job.clients_config.values()}
        )
        self.clients = {
            client_id: ClientSlot(
                client_id=client_id,
                connection_id=c["connection_id"],
                site_name=c["connection_name"],
                site_key=connections[c["connection_id"]].site_key,
                dataset_name=c["dataset_name"],
            )
            for client_id, c in job.clients_config.items()
            if c["connection_id"] in connections
        }
        self._by_site_key: dict[str, list[ClientSlot]] = {}
        for client in self.clients.values():
            self._by_site_key.setdefault(client.site_key, []).append(client)
        self.strategy = FedAvgModelStrategy(
            local_epochs=job.local_epochs,
            learning_rate=job.learning_rate,
            feature_names=cfg["feature_names"],
            classes=cfg["classes"],
            hidden_size=cfg["hidden_size"],
            train_sleep=train_sleep,
            train_sleep_site=train_sleep_site,
        )
        self.check_seconds = min(MAX_NODE_CHECK_SECONDS, settings.CLIENT_TIMEOUT_THRESHOLD / 5)
        self.prober = (
            SiteProber(list(connections.values()), self.check_seconds, self._sites_alive)
            if settings.SITE_HEALTH_PROBES
            else None
        )
        self.webhook = alerts.webhook_url(job.alert_webhook_url)
        self._stop_flushing: Callable[[], None] = lambda: None  # set by run()
        self.online: dict[int, NodeInfo] = {}
        self.pushed: dict[str, Pushed] = {}  # this round's messages still awaiting a reply
        self._asked: dict[str, int] = {}  # identify message id -> node id
        self._asked_nodes: set[int] = set()
        self._last_node_check = float("-inf")
        self._alerted_alive: int | None = None
        self._lost_at: dict[str, datetime] = {}
        self._loop_beat = time.monotonic()

    def close(self) -> None:
        if self.prober is not None:
            self.prober.stop()
        self._stop_flushing()

    # --- watching nodes: identity, heartbeats, rejoin -------------------------------------

    def watch(self) -> None:
        """Called on every poll of the job's loop, in every phase of the job."""
        self._loop_beat = time.monotonic()
        self._pull_identities()
        now = time.monotonic()
        if now - self._last_node_check >= self.check_seconds:
            self._last_node_check = now
            self.online = {node.node_id: node for node in self.grid.get_nodes()}
            self._ask_new_nodes()
            self._heartbeats()
            self.tracker.server_alive()
        self.tracker.flush_if_due()

    def _ask_new_nodes(self) -> None:
        """Every node that comes online is asked once which site it is: a site whose SuperNode
        restarted comes back as a new node and rejoins its clients at the next round."""
        new_nodes = set(self.online) - self._asked_nodes
        if not new_nodes:
            return
        query = RecordDict({"config": ConfigRecord({"action": "identify"})})
        messages = [
            Message(
                content=query,
                dst_node_id=node_id,
                message_type=MessageType.QUERY,
                group_id=IDENTIFY_GROUP,
            )
            for node_id in new_nodes
        ]
        ids = list(self.grid.push_messages(messages))
        self._asked.update(zip(ids, new_nodes, strict=True))
        self._asked_nodes |= new_nodes

    def _pull_identities(self) -> None:
        if not self._asked:
            return
        for reply in self.grid.pull_messages(list(self._asked)):
            node_id = self._asked.pop(reply.metadata.reply_to_message_id, None)
            if node_id is not None and not reply.has_error():
                self._identify(reply, node_id)

    def _identify(self, reply: Message, node_id: int) -> None:
        if reply.metadata.src_node_id != node_id:
            return
        site = reply.content.config_records.get("site")
        site_key = site.get("site-key") if site is not None else None
        for client in self._by_site_key.get(site_key, []):
            old = client.node_id
            if old == node_id:
                continue
            client.node_id = node_id
            self._lost_at.pop(client.client_id, None)
            if old is None:
                self.tracker.connected(client.client_id, node_id, self.server_round)
                continue
            # The site's SuperNode restarted: whatever its old node was doing is lost.
            self._drop_pushed(client.client_id)
            if self.tracker.statuses.get(client.client_id) != tracking.OFFLINE:
                self.tracker.lost(
                    client.client_id,
                    self.server_round,
                    f"node {old} was replaced by node {node_id}: the site's SuperNode restarted",
                )
            self.tracker.connected(
                client.client_id,
                node_id,
                self.server_round,
                f"site {client.site_name} rejoined as node {node_id} (was node {old}); "
                "it trains again from the next round",
            )

    def _sites_alive(self) -> None:
        """From the prober's thread: healthy sites whose node is online are alive now."""
        for client in self.clients.values():
            status = self.tracker.statuses.get(client.client_id)
            if client.node_id is None or status in tracking.TERMINAL_STATUSES:
                continue
            if status == tracking.OFFLINE or client.node_id not in self.online:
                continue  # only the round loop decides about lost or rejoining clients
            asked_at, health = self.prober.health.get(client.connection_id, (None, HEALTHY))
            if asked_at is not None and not health.down:
                self.tracker.seen(client.client_id, asked_at)
        # A round loop stuck inside Flower (its pull retries for hours when the SuperLink's state
        # is locked) stops the job's heartbeat, so the web app fails the job with a reason.
        if time.monotonic() - self._loop_beat <= self.round_timeout:
            self.tracker.server_alive()
        self.tracker.flush_if_due()

    def _heartbeats(self) -> None:
        """`last_seen` from the site's health (every few seconds) and Flower's heartbeats;
        a client whose node left the SuperLink, or whose site has been silent longer than
        CLIENT_TIMEOUT_THRESHOLD, is lost for this round."""
        wall = timezone.now()
        threshold = settings.CLIENT_TIMEOUT_THRESHOLD
        for client in self.clients.values():
            status = self.tracker.statuses.get(client.client_id)
            if client.node_id is None or status in tracking.TERMINAL_STATUSES:
                continue
            asked_at, health = (
                self.prober.health.get(client.connection_id, (wall, HEALTHY))
                if self.prober
                else (wall, HEALTHY)
            )
            problem = health.problem
            self.tracker.site_problem(client.client_id, problem)
            node = self.online.get(client.node_id)
            if node is None:
                if status != tracking.OFFLINE:
                    self._lose(
                        client,
                        f"node {client.node_id} left the Flower SuperLink (missed heartbeats)"
                        + (f"; {problem}" if problem else ""),
                    )
                continue
            # Flower's own last heartbeat from the node.
            heartbeat = datetime.fromtimestamp(
                node.online_until - HEARTBEAT_PATIENCE * node.heartbeat_interval, UTC
            )
            if not health.down:  # healthy, or no answer in time: Flower's node list decides
                self.tracker.seen(client.client_id, asked_at)
                lost_at = self._lost_at.get(client.client_id)
                if status == tracking.OFFLINE and lost_at and heartbeat > lost_at:
                    # A partition healed: the same node heartbeats again after it was lost.
                    del self._lost_at[client.client_id]
                    self.tracker.connected(
                        client.client_id,
                        client.node_id,
                        self.server_round,
                        f"node {client.node_id} is reachable again",
                    )
                continue
            # The site is known down: only Flower's own heartbeat still counts.
            self.tracker.seen(client.client_id, heartbeat)
            last_seen = self.tracker.last_seen(client.client_id) or wall
            silent = (wall - last_seen).total_seconds()
            if silent > threshold and status != tracking.OFFLINE:
                self._lose(client, f"{problem}; no heartbeat or reply for {silent:.0f} s")

    def _lose(self, client: ClientSlot, reason: str) -> None:
        self._lost_at[client.client_id] = timezone.now()
        self._drop_pushed(client.client_id)
        self.tracker.lost(client.client_id, self.server_round, reason)
        alerts.send(
            self.webhook,
            alerts.CLIENT_OFFLINE,
            self.job.pk,
            self.job.name,
            client_id=client.client_id,
            site=client.site_name,
            round=self.server_round,
            reason=reason,
        )
        alive = len(self._usable())
        if alive <= self.job.min_clients and alive != self._alerted_alive:
            self._alerted_alive = alive
            alerts.send(
                self.webhook,
                alerts.BELOW_MIN_CLIENTS_RISK,
                self.job.pk,
                self.job.name,
                alive_clients=alive,
                min_clients=self.job.min_clients,
                round=self.server_round,
            )

    def _drop_pushed(self, client_id: str) -> None:
        for message_id, sent in list(self.pushed.items()):
            if sent.client_id == client_id:
                del self.pushed[message_id]

    def _usable(self) -> list[ClientSlot]:
        return [
            c
            for c in self.clients.values()
            if c.node_id is not None
            and c.node_id in self.online
            and self.tracker.statuses.get(c.client_id) not in (tracking.ERROR, tracking.OFFLINE)
        ]

    # --- identifying the job's nodes ---------------------------------------------------

    def identify_nodes(self) -> None:
        """Wait until every site of the job has a node, or the node wait timeout."""
        deadline = time.monotonic() + self.node_wait_timeout
        while any(c.node_id is None for c in self.clients.values()):
            if time.monotonic() > deadline:
                break
            self.watch()
            time.sleep(POLL_SECONDS)
        for client in self.clients.values():
            if client.node_id is None:
                self.tracker.failed(
                    client.client_id,
                    0,
                    f"site {client.site_name} did not connect: no Flower node identified "
                    f"itself as this site within {self.node_wait_timeout:.0f} s "
                    "(is its SuperNode running?)",
                )
        self.tracker.flush()

    # --- rounds ------------------------------------------------------------------------

    def run(self) -> None:
        if self.prober is not None:
            self.prober.start()
        self._stop_flushing = self.tracker.flush_in_background()
        self.identify_nodes()
        torch.manual_seed(self.job.pk)
        cfg = self.job.model_config
        model = build_model(len(cfg["feature_names"]), len(cfg["classes"]), cfg["hidden_size"])
        arrays = ArrayRecord(model.state_dict())
        for server_round in range(1, self.job.total_rounds + 1):
            self.server_round = server_round
            self._last_node_check = float("-inf")  # fresh node list for choosing the round
            self.watch()
            active = self._usable()
            self._require_clients(len(active), f"before round {server_round}")
            # The job's round is the one in progress, written with the round's first flush.
            self.tracker.job(current_round=server_round)
            replies = self.run_round(server_round, arrays, active)
            self._require_clients(len(replies), f"in round {server_round}")
            new_arrays, _ = self.strategy.aggregate_train(server_round, replies)
            if new_arrays is None:
                raise JobFailed(f"round {server_round}: nothing to aggregate")
            arrays = new_arrays
            self.tracker.flush()
        self.model_file = self._save_model(arrays)

    def _require_clients(self, available: int, when: str) -> None:
        if available >= self.job.min_clients:
            return
        failing = [
            f"{c.site_name}/{c.dataset_name} ({self.tracker.statuses.get(c.client_id)})"
            for c in self.clients.values()
            if self.tracker.statuses.get(c.client_id) in (tracking.ERROR, tracking.OFFLINE)
            or c.node_id is None
        ]
        raise JobFailed(
            f"only {available} client(s) usable {when}, fewer than min_clients="
            f"{self.job.min_clients}; failing: {', '.join(failing) or 'none'} "
            "(see each client's reason on the dashboard)"
        )

    def run_round(
        self, server_round: int, arrays: ArrayRecord, clients: list[ClientSlot]
    ) -> list[Message]:
        """Push one message per client, record each reply as it arrives, stop at the deadline."""
        outgoing = self.strategy.configure_client_train(server_round, arrays, clients)
        pushed_at = time.monotonic()
        ids = list(self.grid.push_messages([message for _, message in outgoing]))
        self.pushed = {}
        for message_id, (client, _) in zip(ids, outgoing, strict=True):
            self.pushed[message_id] = Pushed(
                client.client_id, client.node_id, server_round, pushed_at
            )
            self.tracker.training(client.client_id, server_round)
        self.tracker.flush()
        good: list[Message] = []
        deadline = pushed_at + self.round_timeout
        while self.pushed and time.monotonic() < deadline:
            for reply in self.grid.pull_messages(list(self.pushed)):
                sent = self.pushed.pop(reply.metadata.reply_to_message_id, None)
                if sent is None:
                    continue
                if reply.has_error() and reply.error.code == ErrorCode.NODE_UNAVAILABLE:
                    # Flower gave up on the node (frozen, cut off): that is offline, not a
                    # fault of the client, and it may come back.
                    self._lose(
                        self.clients[sent.client_id],
                        f"Flower could not reach node {sent.node_id} in round {server_round}: "
                        f"{reply.error.reason}",
                    )
                    continue
                result = update_client_tracking(
                    self.tracker, sent, reply, arrays, time.monotonic() - sent.pushed_at
                )
                if result is not None:
                    good.append(result)
            self.watch()
            if self.pushed:
                time.sleep(POLL_SECONDS)
        for sent in self.pushed.values():
            self.tracker.failed(
                sent.client_id,
                server_round,
                f"no reply within the round timeout ({self.round_timeout:.0f} s)",
            )
        self.pushed = {}
        return good

    def _save_model(self, arrays: ArrayRecord) -> Path:
        cfg = self.job.model_config
        model_dir = Path(settings.MODEL_DIR)
        model_dir.mkdir(parents=True, exist_ok=True)
        path = model_dir / f"job_{self.job.pk}.pt"
        torch.save(
            {
                "state_dict": arrays.to_torch_state_dict(),
                "feature_names": cfg["feature_names"],
                "classes": cfg["classes"],
                "target": cfg["target"],
                "hidden_size": cfg["hidden_size"],
                "rounds": self.server_round,
            },
            path,
        )
        return path
