"""start_flower_server: what the ServerApp runs for one job.

The SuperLink spawns one ServerApp process per Flower run; the run's config carries the job
id. The process inherits the SuperLink's environment (DJANGO_SETTINGS_MODULE, DATABASE_URL),
so it reads the job and writes tracking through the Django ORM. This module reads the job
and settings from the database once, wires the round loop's parts together, starts the
background threads (site probes, tracking flushes), and ends the job with a reason.
"""

import functools
import logging
from pathlib import Path

from django.conf import settings
from flwr.app import Context

from webapp import alerts, jobs
from webapp.models import Connection, TrainingJob
from webapp.server_fn.strategies import FedAvgModelStrategy
from webapp.serverapp.liveness import LivenessMonitor, SiteProber
from webapp.serverapp.nodes import ClientSlot, NodeDirectory
from webapp.serverapp.plan import JobPlan, Timeouts
from webapp.serverapp.rounds import JobFailed, JobRunner
from webapp.serverapp.runtime import Clock, JobGrid, SystemClock
from webapp.tracking import ClientTracker
from webapp.tracking.status import ClientStatus

logger = logging.getLogger(__name__)

# How often nodes and sites are checked: several times per CLIENT_TIMEOUT_THRESHOLD, so a
# healthy client's last_seen never gets near it (at most 5 s: each check may write).
MAX_NODE_CHECK_SECONDS = 5.0


def start_flower_server(grid: JobGrid, context: Context, *, clock: Clock | None = None) -> None:
    job_id = int(context.run_config.get("job-id", 0))
    job = TrainingJob.objects.filter(pk=job_id).first()
    if job is None:
        logger.error("run %s names job %s, which does not exist", context.run_id, job_id)
        return
    if not jobs.mark_running(job_id):
        logger.warning("job %s is %s; not running it", job_id, job.status)
        return
    tracker = ClientTracker(job_id)
    clock = clock or SystemClock()
    connections = Connection.objects.in_bulk(
        {c["connection_id"] for c in job.clients_config.values()}
    )
    check_seconds = min(MAX_NODE_CHECK_SECONDS, settings.CLIENT_TIMEOUT_THRESHOLD / 5)
    prober = (
        SiteProber(list(connections.values()), check_seconds, clock)
        if settings.SITE_HEALTH_PROBES
        else None
    )
    runner = build_runner(grid, job, connections, tracker, clock, check_seconds, prober)
    if prober is not None:
        prober.on_health = runner.liveness.sites_alive
        prober.start()
    stop_flushing = tracker.flush_in_background()
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
        if prober is not None:
            prober.stop()
        stop_flushing()
    tracker.finish_clients(ClientStatus.COMPLETED, runner.server_round)
    tracker.job(current_round=runner.server_round, model_file=str(runner.model_file or ""))
    tracker.flush()
    jobs.finish_job(job_id, TrainingJob.Status.COMPLETED)


def build_runner(
    grid: JobGrid,
    job: TrainingJob,
    connections: dict[int, Connection],
    tracker: ClientTracker,
    clock: Clock,
    check_seconds: float,
    prober: SiteProber | None = None,
) -> JobRunner:
    """The round loop of `job`, its clients served by the sites in `connections`."""
    cfg = job.model_config
    clients = [
        ClientSlot(
            client_id=client_id,
            connection_id=c["connection_id"],
            site_name=c["connection_name"],
            site_key=connections[c["connection_id"]].site_key,
            dataset_name=c["dataset_name"],
        )
        for client_id, c in job.clients_config.items()
        if c["connection_id"] in connections
    ]
    directory = NodeDirectory(grid, clients, clock)
    timeouts = Timeouts(
        node_wait=settings.JOB_NODE_WAIT_TIMEOUT,
        round=settings.JOB_ROUND_TIMEOUT,
        node_check=check_seconds,
    )
    liveness = LivenessMonitor(
        tracker,
        directory.clients,
        min_clients=job.min_clients,
        timeout_threshold=settings.CLIENT_TIMEOUT_THRESHOLD,
        round_timeout=timeouts.round,
        clock=clock,
        alert=functools.partial(
            alerts.send,
            alerts.webhook_url(job.alert_webhook_url),
            job_id=job.pk,
            job_name=job.name,
        ),
        prober=prober,
    )
    aggregation = FedAvgModelStrategy(
        local_epochs=job.local_epochs,
        learning_rate=job.learning_rate,
        feature_names=cfg["feature_names"],
        classes=cfg["classes"],
        hidden_size=cfg["hidden_size"],
    )
    plan = JobPlan(
        job_id=job.pk,
        total_rounds=job.total_rounds,
        min_clients=job.min_clients,
        feature_names=cfg["feature_names"],
        classes=cfg["classes"],
        target=cfg["target"],
        hidden_size=cfg["hidden_size"],
    )
    return JobRunner(
        grid,
        plan,
        tracker,
        aggregation,
        directory,
        liveness,
        timeouts=timeouts,
        clock=clock,
        model_dir=Path(settings.MODEL_DIR),
    )
