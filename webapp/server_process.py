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
import time
from pathlib import Path

import torch
from django.conf import settings
from flwr.app import ArrayRecord, ConfigRecord, Context, Message, MessageType, RecordDict
from flwr.serverapp import Grid, ServerApp

from clients.task import build_model
from webapp import jobs, tracking
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
NODE_CHECK_SECONDS = 5.0
IDENTIFY_GROUP = "identify"


class JobFailed(Exception):
    """The job cannot go on; the message names the clients and the reason."""


@app.main()
def main(grid: Grid, context: Context) -> None:
    start_flower_server(grid, context)


def start_flower_server(grid: Grid, context: Context) -> None:
    job_id = int(context.run_config.get("job-id", 0))
    train_sleep = float(context.run_config.get("train-sleep", 0.0))
    job = TrainingJob.objects.filter(pk=job_id).first()
    if job is None:
        logger.error("run %s names job %s, which does not exist", grid.run.run_id, job_id)
        return
    if not jobs.mark_running(job_id):
        logger.warning("job %s is %s; not running it", job_id, job.status)
        return
    tracker = tracking.ClientTracker(job_id)
    runner = JobRunner(grid, job, tracker, train_sleep=train_sleep)
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
    tracker.finish_clients(tracking.COMPLETED, runner.server_round)
    tracker.job(current_round=runner.server_round, model_file=str(runner.model_file or ""))
    tracker.flush()
    jobs.finish_job(job_id, TrainingJob.Status.COMPLETED)


class JobRunner:
    def __init__(
        self,
        grid: Grid,
        job: TrainingJob,
        tracker: tracking.ClientTracker,
        *,
        train_sleep: float = 0.0,
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
        self.strategy = FedAvgModelStrategy(
            local_epochs=job.local_epochs,
            learning_rate=job.learning_rate,
            feature_names=cfg["feature_names"],
            classes=cfg["classes"],
            hidden_size=cfg["hidden_size"],
            train_sleep=train_sleep,
        )
        self._last_node_check = 0.0

    # --- identifying the job's nodes ---------------------------------------------------

    def identify_nodes(self) -> None:
        """Ask online nodes which site they are, until every site of the job has answered."""
        by_key: dict[str, list[ClientSlot]] = {}
        for client in self.clients.values():
            by_key.setdefault(client.site_key, []).append(client)
        asked: dict[str, int] = {}  # message id -> node id
        pending: set[str] = set()
        deadline = time.monotonic() + self.node_wait_timeout
        query = RecordDict({"config": ConfigRecord({"action": "identify"})})
        while any(c.node_id is None for c in self.clients.values()):
            if time.monotonic() > deadline:
                break
            new_nodes = set(self.grid.get_node_ids()) - set(asked.values())
            if new_nodes:
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
                asked.update(zip(ids, new_nodes, strict=True))
                pending.update(ids)
            for reply in self.grid.pull_messages(list(pending)) if pending else []:
                pending.discard(reply.metadata.reply_to_message_id)
                self._identify(reply, asked.get(reply.metadata.reply_to_message_id), by_key)
            self.tracker.flush_if_due()
            time.sleep(POLL_SECONDS)
        missing = [c for c in self.clients.values() if c.node_id is None]
        for client in missing:
            self.tracker.failed(
                client.client_id,
                0,
                f"site {client.site_name} did not connect: no Flower node identified itself "
                f"as this site within {self.node_wait_timeout:.0f} s (is its SuperNode running?)",
            )
        self.tracker.flush()

    def _identify(
        self, reply: Message, node_id: int | None, by_key: dict[str, list[ClientSlot]]
    ) -> None:
        if reply.has_error() or node_id is None:
            return
        if reply.metadata.src_node_id != node_id:
            return
        site = reply.content.config_records.get("site")
        site_key = site.get("site-key") if site is not None else None
        for client in by_key.get(site_key, []):
            if client.node_id is None:
                client.node_id = node_id
                self.tracker.connected(client.client_id, node_id)

    # --- rounds ------------------------------------------------------------------------

    def run(self) -> None:
        self.identify_nodes()
        torch.manual_seed(self.job.pk)
        cfg = self.job.model_config
        model = build_model(len(cfg["feature_names"]), len(cfg["classes"]), cfg["hidden_size"])
        arrays = ArrayRecord(model.state_dict())
        for server_round in range(1, self.job.total_rounds + 1):
            self.server_round = server_round
            active = [
                c
                for c in self.clients.values()
                if c.node_id is not None
                and self.tracker.statuses.get(c.client_id) != tracking.ERROR
            ]
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
            f"{c.site_name}/{c.dataset_name}"
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
        pushed: dict[str, Pushed] = {}
        for message_id, (client, _) in zip(ids, outgoing, strict=True):
            pushed[message_id] = Pushed(client.client_id, client.node_id, server_round, pushed_at)
            self.tracker.training(client.client_id, server_round)
        self.tracker.flush()
        good: list[Message] = []
        deadline = pushed_at + self.round_timeout
        while pushed and time.monotonic() < deadline:
            for reply in self.grid.pull_messages(list(pushed)):
                sent = pushed.pop(reply.metadata.reply_to_message_id, None)
                if sent is None:
                    continue
                result = update_client_tracking(
                    self.tracker, sent, reply, arrays, time.monotonic() - sent.pushed_at
                )
                if result is not None:
                    good.append(result)
            self._check_nodes(pushed, server_round)
            self.tracker.flush_if_due()
            if pushed:
                time.sleep(POLL_SECONDS)
        for sent in pushed.values():
            self.tracker.failed(
                sent.client_id,
                server_round,
                f"no reply within the round timeout ({self.round_timeout:.0f} s)",
            )
        return good

    def _check_nodes(self, pushed: dict[str, Pushed], server_round: int) -> None:
        """Heartbeats: a client whose node is online is alive; one whose node left is lost."""
        now = time.monotonic()
        if now - self._last_node_check < NODE_CHECK_SECONDS:
            return
        self._last_node_check = now
        online = set(self.grid.get_node_ids())
        for message_id, sent in list(pushed.items()):
            if sent.node_id in online:
                self.tracker.seen(sent.client_id)
            else:
                pushed.pop(message_id)
                self.tracker.lost(
                    sent.client_id,
                    server_round,
                    f"node {sent.node_id} left the SuperLink (missed heartbeats) during "
                    f"round {server_round}",
                )

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
