"""Job lifecycle services: create and submit a job, move it through its statuses.

Status changes are conditional updates (`filter(status__in=…).update(…)`), so a late writer —
a ServerApp that notices a stop, a web request racing the end of a run — never overwrites a
job that has already ended. Every write here that changes what the API shows also bumps
`tracking_version`, the pollers' change marker (ETag), like each tracking flush does.
"""

import logging
from collections.abc import Iterable
from dataclasses import dataclass

from django.conf import settings
from django.core.cache import cache
from django.db import IntegrityError, transaction
from django.db.models import F
from django.utils import timezone

from clients.protocol import sort_labels
from webapp import flower, tracking
from webapp.api import parsing
from webapp.models import Connection, TrainingJob
from webapp.sites import SiteError, fetch_datasets

logger = logging.getLogger(__name__)

Status = TrainingJob.Status
ACTIVE = (Status.PENDING, Status.RUNNING)

MAX_CLIENTS_PER_JOB = 1000
# Bounds a job's history rows (one per client and round); see docs/production.md.
MAX_CLIENT_ROUNDS_PER_JOB = 100_000
HIDDEN_SIZE = 32


class JobValidationError(parsing.BadRequest):
    """The job cannot start; the message says what to change."""


class JobAlreadyStarted(Exception):
    """The form that asks for this job has already started one: `job`."""

    def __init__(self, job: TrainingJob) -> None:
        super().__init__(f"job {job.pk} was already started by this form")
        self.job = job


@dataclass(frozen=True)
class JobRequest:
    name: str
    selections: list[tuple[int, str]]  # (connection id, dataset name)
    rounds: int
    local_epochs: int
    learning_rate: float
    min_clients: int
    alert_webhook_url: str = ""


def _check_request(req: JobRequest) -> None:
    """Each field's bounds (the same rules as the API's and the form's), and the limits of a
    job as a whole."""
    with parsing.refused_as(JobValidationError):
        parsing.JOB_NAME.check(req.name)
        if not req.selections:
            raise JobValidationError("datasets: select at least one dataset")
        if len(req.selections) > MAX_CLIENTS_PER_JOB:
            raise JobValidationError(f"datasets: at most {MAX_CLIENTS_PER_JOB} per job")
        if len(set(req.selections)) != len(req.selections):
            raise JobValidationError("datasets: the same dataset is selected twice")
        parsing.ROUNDS.check(req.rounds)
        if req.rounds * len(req.selections) > MAX_CLIENT_ROUNDS_PER_JOB:
            raise JobValidationError(
                f"rounds: {req.rounds} rounds × {len(req.selections)} datasets is more than "
                f"{MAX_CLIENT_ROUNDS_PER_JOB:,} client rounds per job"
            )
        parsing.LOCAL_EPOCHS.check(req.local_epochs)
        parsing.LEARNING_RATE.check(req.learning_rate)
        parsing.ALERT_WEBHOOK_URL.check(req.alert_webhook_url)
        parsing.MIN_CLIENTS.check(req.min_clients, high=len(req.selections))


def _agree_on_schema(chosen: list[tuple[Connection, dict]]) -> dict:
    """Feature order and class labels every selected dataset must share."""
    first_conn, first = chosen[0]
    features = list(first["feature_names"])
    target = first["target"]
    classes: set[str] = set()
    for connection, meta in chosen:
        where = f"{connection.name}: dataset '{meta['name']}'"
        if meta["target"] != target:
            raise JobValidationError(
                f"{where} predicts '{meta['target']}' but {first_conn.name}: dataset "
                f"'{first['name']}' predicts '{target}'; a job trains one model on one target"
            )
        if set(meta["feature_names"]) != set(features):
            missing = sorted(set(features) - set(meta["feature_names"]))
            extra = sorted(set(meta["feature_names"]) - set(features))
            raise JobValidationError(
                f"{where} has different columns than {first_conn.name}: dataset "
                f"'{first['name']}' (missing: {', '.join(missing[:5]) or 'none'}; "
                f"extra: {', '.join(extra[:5]) or 'none'})"
            )
        classes.update(meta["class_counts"])
    return {
        "feature_names": features,
        "target": target,
        "classes": sort_labels(classes),  # the order every site maps its labels by
        "hidden_size": HIDDEN_SIZE,
    }


def create_job(
    *,
    owner,
    request: JobRequest,
    run_config: dict[str, int | float | str] | None = None,
    start_token: str | None = None,
) -> TrainingJob:
    """Validate a job against the owner's sites, store it with its clients, submit it
    (`run_config`: extra Flower run config for this run).

    Raises JobValidationError for anything the user must fix. A SuperLink that cannot be
    reached does not raise: the job is stored with status `error` and the reason.
    `start_token` makes the start idempotent: if the owner already has a job with that token
    (the same form sent twice, even at the same moment), JobAlreadyStarted names it and
    nothing else is created or submitted.
    """
    if start_token:
        _raise_if_started(owner, start_token)
    _check_request(request)
    connection_ids = {cid for cid, _ in request.selections}
    connections = {c.pk: c for c in Connection.objects.filter(owner=owner, pk__in=connection_ids)}
    unknown = sorted(connection_ids - connections.keys())
    if unknown:
        raise JobValidationError(f"datasets: unknown connection id {unknown[0]}")

    site_datasets: dict[int, dict[str, dict]] = {}
    for connection in connections.values():
        try:
            offered = fetch_datasets(connection)
        except SiteError as exc:
            raise JobValidationError(f"{connection.name}: {exc}") from exc
        site_datasets[connection.pk] = {d["name"]: d for d in offered}

    chosen: list[tuple[Connection, dict]] = []
    for connection_id, dataset_name in request.selections:
        connection = connections[connection_id]
        meta = site_datasets[connection_id].get(dataset_name)
        if meta is None:
            raise JobValidationError(
                f"{connection.name}: the site offers no dataset named '{dataset_name}'"
            )
        if not meta.get("ok"):
            raise JobValidationError(
                f"{connection.name}: dataset '{dataset_name}' cannot be used: {meta.get('error')}"
            )
        chosen.append((connection, meta))
    model_config = _agree_on_schema(chosen)
    if len(model_config["classes"]) < 2:
        raise JobValidationError("the selected datasets hold fewer than two classes together")

    try:
        with transaction.atomic():
            job = store_job(
                owner,
                [(connection, meta["name"]) for connection, meta in chosen],
                name=request.name.strip(),
                total_rounds=request.rounds,
                local_epochs=request.local_epochs,
                learning_rate=request.learning_rate,
                min_clients=request.min_clients,
                model_config=model_config,
                alert_webhook_url=request.alert_webhook_url,
                start_token=start_token or None,
            )
    except IntegrityError:
        # Another request with this token stored its job after our check above.
        if start_token:
            _raise_if_started(owner, start_token)
        raise
    submit_job(job, run_config)
    return job


def store_job(owner, clients: Iterable[tuple[Connection, str]], **fields) -> TrainingJob:
    """Store a job with one client per (connection, dataset name), each in its initial state;
    `fields` are the job's own model fields. Test factories and benchmarks store jobs here too,
    so their jobs are shaped exactly like the ones users create."""
    clients_config, clients_status = tracking.build_client_entries(clients)
    return TrainingJob.objects.create(
        owner=owner, clients_config=clients_config, clients_status=clients_status, **fields
    )


def _raise_if_started(owner, start_token: str) -> None:
    job = TrainingJob.objects.filter(owner=owner, start_token=start_token).first()
    if job is not None:
        raise JobAlreadyStarted(job)


def submit_job(job: TrainingJob, run_config: dict[str, int | float | str] | None = None) -> None:
    try:
        run_id = flower.submit_run(job.pk, run_config)
    except flower.FlowerError as exc:
        logger.warning("job %s not submitted: %s", job.pk, exc)
        finish_job(job.pk, Status.ERROR, str(exc))
        job.refresh_from_db()
        return
    TrainingJob.objects.filter(pk=job.pk).update(
        flower_run_id=str(run_id), tracking_version=F("tracking_version") + 1
    )
    job.flower_run_id = str(run_id)


def mark_running(job_id: int) -> bool:
    return bool(
        TrainingJob.objects.filter(pk=job_id, status=Status.PENDING).update(
            status=Status.RUNNING,
            started_at=timezone.now(),
            server_seen_at=timezone.now(),
            tracking_version=F("tracking_version") + 1,
        )
    )


def finish_job(job_id: int, status: str, reason: str = "") -> bool:
    """End a job once: returns False if it had already ended."""
    return bool(
        TrainingJob.objects.filter(pk=job_id, status__in=ACTIVE).update(
            status=status,
            error_message=reason[:2000],
            finished_at=timezone.now(),
            tracking_version=F("tracking_version") + 1,
        )
    )


def end_job_early(
    job_id: int,
    status: str,
    reason: str,
    server_round: int,
    *,
    client_reason: str | None = None,
    tracker: tracking.ClientTracker | None = None,
) -> bool:
    """End an active job as failed or stopped; its clients still going become `stopped`.

    Writes nothing and returns False if the job had already ended (a user's stop and a
    failing ServerApp may race).
    """
    with transaction.atomic():
        if not finish_job(job_id, status, reason):
            return False
        tracker = tracker or tracking.ClientTracker(job_id)
        tracker.finish_clients(tracking.STOPPED, server_round, client_reason or reason)
        tracker.flush()
    return True


def stop_job(job: TrainingJob, *, by: str) -> None:
    """Stop a job on the request of the user named `by`: the Flower run first, then the
    record, whose reason says who stopped it ("stopped by alice"; the dashboard adds when)."""
    if job.is_finished:
        return
    if job.flower_run_id:
        try:
            flower.stop_run(int(job.flower_run_id))
        except flower.FlowerError as exc:
            # The run may be gone with its SuperLink; the job is stopped all the same.
            logger.warning("stopping run %s of job %s: %s", job.flower_run_id, job.pk, exc)
    end_job_early(
        job.pk,
        Status.STOPPED,
        f"stopped by {by}",
        job.current_round,
        client_reason=f"job stopped by {by}",
    )
    job.refresh_from_db()


RECONCILE_EVERY_SECONDS = 10


def reconcile_with_flower(job: TrainingJob) -> None:
    """A job whose Flower run has ended, or whose ServerApp went silent, cannot stay active
    (a crashed or killed ServerApp, a stopped run, a restarted SuperLink).

    Pollers call this often; the SuperLink is asked at most every RECONCILE_EVERY_SECONDS
    per job and process.
    """
    if job.is_finished or not job.flower_run_id:
        return
    if not cache.add(f"reconcile-job-{job.pk}", True, RECONCILE_EVERY_SECONDS):
        return
    reason = _run_problem(job)
    if reason is None:
        return
    end_job_early(job.pk, Status.FAILED, reason, job.current_round)
    job.refresh_from_db()


def _run_problem(job: TrainingJob) -> str | None:
    silent = None
    if job.status == Status.RUNNING and job.server_seen_at is not None:
        silent = (timezone.now() - job.server_seen_at).total_seconds()
        if silent <= settings.JOB_SERVER_TIMEOUT:
            silent = None
    try:
        run = flower.run_status(int(job.flower_run_id))
    except flower.FlowerError as exc:
        if silent is None:
            return None  # an unreachable SuperLink alone says nothing about the run
        return f"the job's ServerApp has been silent for {silent:.0f} s and {exc}"
    if run is None:
        return "the Flower SuperLink no longer knows this run (was it restarted?)"
    if run.finished:
        reason = f"the Flower run ended ({run.sub_status or 'unknown'}) before the job did"
        return f"{reason}: {run.details}" if run.details else reason
    if silent is not None:
        return (
            f"the job's ServerApp has written nothing for {silent:.0f} s "
            f"(JOB_SERVER_TIMEOUT={settings.JOB_SERVER_TIMEOUT} s): it crashed, was killed, or "
            "is stuck inside Flower (see the SuperLink's log)"
        )
    return None
