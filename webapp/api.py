"""The JSON API: the dashboard's endpoints (seed contract) and the job API for scripts.

Every error is `{"success": false, "error": "…"}` with its status code; another user's job or
connection is a 404, the same as one that does not exist.
"""

import csv
import functools
import json
import math
import threading
from collections.abc import Callable, Iterator
from datetime import datetime
from typing import Any

from django.core.cache import cache
from django.db import connection
from django.http import HttpRequest, HttpResponse, JsonResponse
from django.utils import timezone
from django.utils.cache import parse_etags

from webapp import jobs, jsoncodec, tracking
from webapp.auth import api_login_required, api_methods, json_error, token_owned_value
from webapp.models import ClientEvent, ClientRoundMetric, Connection, TrainingJob
from webapp.sites import site_views

MAX_BODY_BYTES = 1024 * 1024
# A client's timeline shows its latest events; a long job would otherwise grow it unbounded.
MAX_EVENTS = 500
# A rendered clients/ snapshot is kept this long at most (it is re-rendered on any change).
SNAPSHOT_CACHE_SECONDS = 300
_RENDER_LOCKS = [threading.Lock() for _ in range(64)]  # by job id


class BadRequest(ValueError):
    pass


def _body(request: HttpRequest) -> dict[str, Any]:
    if len(request.body) > MAX_BODY_BYTES:
        raise BadRequest("request body is larger than 1 MB")
    try:
        data = json.loads(request.body or b"{}")
    except (ValueError, UnicodeDecodeError):
        raise BadRequest("request body is not valid JSON") from None
    if not isinstance(data, dict):
        raise BadRequest("request body must be a JSON object")
    return data


def _int(data: dict, key: str, default: int | None = None) -> int:
    value = data.get(key, default)
    if isinstance(value, bool) or not isinstance(value, int):
        raise BadRequest(f"{key}: must be a whole number")
    if not -(2**63) <= value < 2**63:  # beyond a database integer: SQLite would raise
        raise BadRequest(f"{key}: out of range")
    return value


def _float(data: dict, key: str, default: float | None = None) -> float:
    value = data.get(key, default)
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise BadRequest(f"{key}: must be a number")
    return float(value)


def _str(data: dict, key: str, max_length: int) -> str:
    value = data.get(key)
    if not isinstance(value, str) or not value.strip():
        raise BadRequest(f"{key}: must be a non-empty string")
    if len(value) > max_length:
        raise BadRequest(f"{key}: at most {max_length} characters")
    if "\x00" in value:  # PostgreSQL refuses NUL in text: a 400, not a 500
        raise BadRequest(f"{key}: must not contain NUL characters")
    return value.strip()


def owned_job(view: Callable[..., HttpResponse]) -> Callable[..., HttpResponse]:
    """Resolve `job_id` to one of the caller's jobs; anyone else's is a 404 like a missing one."""

    @functools.wraps(view)
    def wrapper(request: HttpRequest, job_id: int, *args, **kwargs) -> HttpResponse:
        # The per-client JSON is parsed only when a view reads it (one more query then):
        # clients_config is shown by no endpoint, clients_status often comes from the cache.
        job = (
            TrainingJob.objects.filter(pk=job_id, owner=request.user)
            .defer("clients_config", "clients_status")
            .first()
        )
        if job is None:
            return json_error("job not found", 404)
        return view(request, job, *args, **kwargs)

    return wrapper


def job_json(job: TrainingJob) -> dict[str, Any]:
    return {
        "id": job.pk,
        "name": job.name,
        "status": job.status,
        "current_round": job.current_round,
        "total_rounds": job.total_rounds,
        "local_epochs": job.local_epochs,
        "learning_rate": job.learning_rate,
        "min_clients": job.min_clients,
        "error_message": job.error_message,
        "flower_run_id": job.flower_run_id or None,
        "created_at": job.created_at.isoformat(),
        "started_at": job.started_at.isoformat() if job.started_at else None,
        "finished_at": job.finished_at.isoformat() if job.finished_at else None,
        "model_available": bool(job.model_file) and job.status == TrainingJob.Status.COMPLETED,
    }


# --- conditional requests ---------------------------------------------------------------
#
# A polled snapshot's ETag is "<tracking_version>-<until>": the version changes with every
# write that changes what the endpoint shows (tracking flushes, job status changes), and
# until (epoch seconds, or "never") is when a status derived from time (offline, slow) could
# next change with nothing written. A tag is still good while the version is the same and
# that moment has not come: checking it costs one indexed single-column query.
#
# Statuses derived from the clock are taken as of the start of the current second: a round's
# clients start within milliseconds of each other, and their deadlines would otherwise expire
# the snapshot a thousand times a second. So a snapshot changes at most once a second with
# nothing written, and shows a client slow or offline at most a second late.


def _as_of(now: datetime) -> datetime:
    return now.replace(microsecond=0)


def _until(valid_until: datetime | None) -> int | None:
    """The first whole second at which a snapshot taken as of a second before it may differ:
    derive_status as of any whole second before the moment gives the same answer."""
    return None if valid_until is None else math.ceil(valid_until.timestamp())


def _snapshot_tag(version: int, until: int | None) -> str:
    return f'"{version}-{"never" if until is None else until}"'


def _fresh_tag(request: HttpRequest, version: int, now: datetime) -> str | None:
    """The caller's If-None-Match tag that still describes the current snapshot, if any."""
    for tag in parse_etags(request.headers.get("If-None-Match", "")):
        stored_version, _, until = tag.strip('"').partition("-")
        if stored_version != str(version):
            continue
        if until == "never" or (until.isdigit() and now.timestamp() < int(until)):
            return tag
    return None


def _tagged(response: HttpResponse, tag: str) -> HttpResponse:
    response["ETag"] = tag
    # Browsers and proxies may keep the body, but must ask again before each use.
    response["Cache-Control"] = "private, no-cache"
    return response


def _not_modified(request: HttpRequest, version: int | None, now: datetime) -> HttpResponse | None:
    """A 304 if the caller's If-None-Match still describes this version of the snapshot."""
    tag = None if version is None else _fresh_tag(request, version, now)
    return None if tag is None else _tagged(HttpResponse(status=304), tag)


def _tracking_version(job_id: int, user_id: int) -> int | None:
    """The job's tracking_version if it is this user's job: the 304 check's one query.

    Plain SQL: building the same ORM query took ~0.5 ms, 25x the time the database needs
    to answer it, and this runs on every poll.
    """
    table = connection.ops.quote_name(TrainingJob._meta.db_table)
    with connection.cursor() as cursor:
        cursor.execute(
            f"SELECT tracking_version FROM {table} WHERE id = %s AND owner_id = %s",
            [job_id, user_id],
        )
        row = cursor.fetchone()
    return None if row is None else row[0]


def conditional_snapshot(view: Callable[..., HttpResponse]) -> Callable[..., HttpResponse]:
    """Answer 304 to a still-good If-None-Match without loading the job's snapshot.

    Goes outside owned_job: the cheap query is scoped to the caller's jobs, so another user's
    job never matches and falls through to owned_job's 404. A bearer token's poll is answered
    ahead of the middleware stack (`token_not_modified`, called by TokenNotModifiedMiddleware):
    one query checks the token, the ownership and the version at once.
    """

    @functools.wraps(view)
    def wrapper(request: HttpRequest, job_id: int, *args, **kwargs) -> HttpResponse:
        if request.headers.get("If-None-Match"):
            version = _tracking_version(job_id, request.user.pk)
            unchanged = _not_modified(request, version, timezone.now())
            if unchanged is not None:
                return unchanged
        return view(request, job_id, *args, **kwargs)

    def token_not_modified(
        request: HttpRequest, key: str, job_id: int, *args, **kwargs
    ) -> HttpResponse | None:
        now = timezone.now()
        version = token_owned_value(key, now, TrainingJob, "tracking_version", job_id)
        return _not_modified(request, version, now)

    # functools.wraps copies it onto the outer decorators: the URL conf's view carries it.
    # A poll it does not answer (None) goes down the whole stack.
    wrapper.token_not_modified = token_not_modified
    return wrapper


# --- the dashboard's endpoints -----------------------------------------------------------


@api_methods("GET")
@api_login_required
@conditional_snapshot
@owned_job
def get_clients_data(request: HttpRequest, job: TrainingJob) -> HttpResponse:
    jobs.reconcile_with_flower(job)  # the dashboard's poll: a dead run must not look alive
    # Every poller of a job gets the same snapshot: each web process renders it once per
    # change (a tracking write, or a status derived from time), not per request. One entry
    # per job, so a running job's old versions take no memory.
    now = timezone.now()
    key = f"clients-data:{job.pk}:{job.created_at.timestamp()}"
    marker = (job.tracking_version, job.status)

    def fresh(cached: tuple | None) -> bool:
        # A snapshot of a later version (rendered by a request that read the job after this
        # one did) is as good: its body and tag belong together.
        return (
            cached is not None
            and (cached[0] == marker or cached[0][0] > job.tracking_version)
            and now.timestamp() < cached[1]
        )

    cached = cache.get(key)
    if not fresh(cached):
        # A poller that arrives while another thread renders this job waits for that
        # render rather than repeating it.
        with _RENDER_LOCKS[job.pk % len(_RENDER_LOCKS)]:
            cached = cache.get(key)
            if not fresh(cached):
                as_of = _as_of(now)
                until = _until(tracking.next_change_at(job, as_of))
                body = jsoncodec.dumps(_clients_data(job, as_of))
                tag = _snapshot_tag(job.tracking_version, until)
                cached = (marker, math.inf if until is None else until, body, tag)
                cache.set(key, cached, SNAPSHOT_CACHE_SECONDS)
    _, _, body, tag = cached
    return _tagged(HttpResponse(body, content_type="application/json"), tag)


def _clients_data(job: TrainingJob, now: datetime) -> dict[str, Any]:
    rows = tracking.client_rows(job, now)
    return {
        "success": True,
        "clients": rows,
        "overview_stats": tracking.overview_stats(rows),
        "job": {
            "id": job.pk,
            "status": job.status,
            "current_round": job.current_round,
            "total_rounds": job.total_rounds,
        },
    }


@api_methods("GET")
@api_login_required
@owned_job
def get_client_performance_data(
    request: HttpRequest, job: TrainingJob, client_id: str
) -> JsonResponse:
    rows = {row["id"]: row for row in tracking.client_rows(job)}
    if client_id not in rows:
        return json_error("client not found in this job", 404)
    return JsonResponse(
        {
            "success": True,
            "performance_data": tracking.performance_history(job, client_id),
            "client_info": rows[client_id],
        }
    )


@api_methods("GET")
@api_login_required
@owned_job
def get_client_events(request: HttpRequest, job: TrainingJob, client_id: str) -> JsonResponse:
    """A client's timeline: its latest MAX_EVENTS status changes, oldest first."""
    if client_id not in (job.clients_status or {}):
        return json_error("client not found in this job", 404)
    latest = list(
        ClientEvent.objects.filter(job=job, client_id=client_id)
        .order_by("-created_at", "-id")
        .values_list("created_at", "round", "old_status", "new_status", "message")[: MAX_EVENTS + 1]
    )
    return JsonResponse(
        {
            "success": True,
            "events": [
                {
                    "time": created_at.isoformat(),
                    "round": round_,
                    "old_status": old_status,
                    "new_status": new_status,
                    "message": message,
                }
                for created_at, round_, old_status, new_status, message in reversed(
                    latest[:MAX_EVENTS]
                )
            ],
            "truncated": len(latest) > MAX_EVENTS,
        }
    )


HISTORY_CSV_HEADER = [
    "client_id",
    "connection_name",
    "dataset",
    "round",
    "accuracy",
    "loss",
    "samples",
    "response_time",
    "status",
    "recorded_at",
]
# Spreadsheets run a cell that starts with one of these as a formula (CSV injection).
_FORMULA_PREFIXES = ("=", "+", "-", "@", "\t", "\r")


def _csv_cell(value: Any) -> Any:
    if isinstance(value, str) and value.startswith(_FORMULA_PREFIXES):
        return "'" + value
    return "" if value is None else value


def history_rows(job: TrainingJob) -> Iterator[list[Any]]:
    """One row per client per round it took part in, from the history and event rows.

    A round's status is the client's last event in it (reported, error, completed, …), so a
    round that failed has a row too, with empty metrics.
    """
    round_status: dict[tuple[str, int], str] = {}
    for client_id, round_, status in (
        ClientEvent.objects.filter(job=job, round__gt=0)
        .order_by("created_at", "id")
        .values_list("client_id", "round", "new_status")
        .iterator()
    ):
        round_status[(client_id, round_)] = status
    metrics = {
        (m.client_id, m.round): m
        for m in ClientRoundMetric.objects.filter(job=job).order_by().iterator()
    }
    config = job.clients_config or {}
    for client_id, round_ in sorted(round_status.keys() | metrics.keys()):
        site = config.get(client_id, {})
        metric = metrics.get((client_id, round_))
        yield [
            client_id,
            site.get("connection_name"),
            site.get("dataset_name"),
            round_,
            metric and metric.accuracy,
            metric and metric.loss,
            metric and metric.train_samples,
            metric and metric.response_time,
            round_status.get((client_id, round_), tracking.REPORTED),
            metric and metric.recorded_at.isoformat(),
        ]


@api_methods("GET")
@api_login_required
@owned_job
def job_history_csv(request: HttpRequest, job: TrainingJob) -> HttpResponse:
    response = HttpResponse(content_type="text/csv; charset=utf-8")
    response["Content-Disposition"] = f'attachment; filename="fedtrack_job_{job.pk}_history.csv"'
    writer = csv.writer(response)
    writer.writerow(HISTORY_CSV_HEADER)
    for row in history_rows(job):
        writer.writerow([_csv_cell(value) for value in row])
    return response


@api_methods("GET", "POST")
@api_login_required
def connections(request: HttpRequest) -> JsonResponse:
    if request.method == "POST":
        try:
            data = _body(request)
            connection = create_connection(
                owner=request.user,
                name=_str(data, "name", 100),
                ip=_str(data, "ip", 255),
                port=_int(data, "port", 5000),
                token=_str(data, "token", 255),
            )
        except BadRequest as exc:
            return json_error(str(exc), 400)
        return JsonResponse(
            {"success": True, "connection": _connection_json(connection)}, status=201
        )
    views = site_views(list(Connection.objects.filter(owner=request.user)))
    return JsonResponse(
        {
            "success": True,
            "connections": [
                {
                    **_connection_json(v.connection),
                    "reachable": v.reachable,
                    "error": v.error or None,
                    "datasets": v.datasets,
                }
                for v in views
            ],
        }
    )


def _connection_json(connection: Connection) -> dict[str, Any]:
    return {
        "id": connection.pk,
        "name": connection.name,
        "ip": connection.ip,
        "port": connection.port,
    }


def create_connection(*, owner, name: str, ip: str, port: int, token: str) -> Connection:
    if not 1 <= port <= 65535:
        raise BadRequest("port: must be between 1 and 65535")
    if Connection.objects.filter(owner=owner, name=name).exists():
        raise BadRequest(f"name: you already have a connection named {name!r}")
    return Connection.objects.create(owner=owner, name=name, ip=ip, port=port, token=token)


def _parse_job_request(data: dict[str, Any]) -> jobs.JobRequest:
    raw = data.get("datasets")
    if not isinstance(raw, list):
        raise BadRequest("datasets: must be a list of {connection_id, dataset_name}")
    selections = []
    for item in raw:
        if not isinstance(item, dict):
            raise BadRequest("datasets: each item must be {connection_id, dataset_name}")
        selections.append((_int(item, "connection_id"), _str(item, "dataset_name", 200)))
    return jobs.JobRequest(
        name=_str(data, "name", 200),
        selections=selections,
        rounds=_int(data, "rounds", 3),
        local_epochs=_int(data, "local_epochs", 1),
        learning_rate=_float(data, "learning_rate", 0.01),
        min_clients=_int(data, "min_clients", len(selections) or 1),
        alert_webhook_url=_optional_str(data, "alert_webhook_url", 500),
    )


def _optional_str(data: dict, key: str, max_length: int) -> str:
    if data.get(key) in (None, ""):
        return ""
    return _str(data, key, max_length)


@api_methods("GET", "POST")
@api_login_required
def job_collection(request: HttpRequest) -> JsonResponse:
    if request.method == "GET":
        owned = TrainingJob.objects.filter(owner=request.user)[:200]
        return JsonResponse({"success": True, "jobs": [job_json(j) for j in owned]})
    try:
        job = jobs.create_job(owner=request.user, request=_parse_job_request(_body(request)))
    except (BadRequest, jobs.JobValidationError) as exc:
        return json_error(str(exc), 400)
    if job.status == TrainingJob.Status.ERROR:
        return JsonResponse(
            {"success": False, "error": job.error_message, "job_id": job.pk}, status=503
        )
    return JsonResponse({"success": True, "job_id": job.pk}, status=201)


@api_methods("GET")
@api_login_required
@owned_job
def job_detail(request: HttpRequest, job: TrainingJob) -> HttpResponse:
    # Reconciled first, even for a conditional request: pollers are what notice a dead run.
    jobs.reconcile_with_flower(job)
    # Nothing in a job's own fields is derived from time: only a write changes them.
    unchanged = _not_modified(request, job.tracking_version, timezone.now())
    if unchanged is not None:
        return unchanged
    response = JsonResponse({"success": True, "job": job_json(job)})
    return _tagged(response, _snapshot_tag(job.tracking_version, None))


@api_methods("POST")
@api_login_required
@owned_job
def job_stop(request: HttpRequest, job: TrainingJob) -> JsonResponse:
    jobs.stop_job(job)
    return JsonResponse({"success": True, "job": job_json(job)})
