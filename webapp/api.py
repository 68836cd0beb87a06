"""The JSON API: the dashboard's endpoints (seed contract) and the job API for scripts.

Every error is `{"success": false, "error": "…"}` with its status code; another user's job or
connection is a 404, the same as one that does not exist.
"""

import functools
import json
from collections.abc import Callable
from datetime import datetime
from typing import Any

from django.core.cache import cache
from django.http import HttpRequest, HttpResponse, JsonResponse
from django.utils import timezone

from webapp import jobs, tracking
from webapp.auth import api_login_required, api_methods, json_error
from webapp.models import Connection, TrainingJob
from webapp.sites import site_views

MAX_BODY_BYTES = 1024 * 1024


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
    return value.strip()


def owned_job(view: Callable[..., JsonResponse]) -> Callable[..., JsonResponse]:
    """Resolve `job_id` to one of the caller's jobs; anyone else's is a 404 like a missing one."""

    @functools.wraps(view)
    def wrapper(request: HttpRequest, job_id: int, *args, **kwargs) -> JsonResponse:
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


@api_methods("GET")
@api_login_required
@owned_job
def get_clients_data(request: HttpRequest, job: TrainingJob) -> HttpResponse:
    jobs.reconcile_with_flower(job)  # the dashboard's poll: a dead run must not look alive
    # Every poller of a job gets the same snapshot: each web process renders it once per
    # tracking write and second (derived statuses are at most that old), not per request.
    now = timezone.now()
    key = (
        f"clients-data:{job.pk}:{job.created_at.timestamp()}:{job.tracking_version}:"
        f"{job.status}:{int(now.timestamp())}"
    )
    body = cache.get(key)
    if body is None:
        body = _clients_data(job, now).content
        cache.set(key, body, 5)
    return HttpResponse(body, content_type="application/json")


def _clients_data(job: TrainingJob, now: datetime) -> JsonResponse:
    rows = tracking.client_rows(job, now)
    return JsonResponse(
        {
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
    )


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
def job_detail(request: HttpRequest, job: TrainingJob) -> JsonResponse:
    jobs.reconcile_with_flower(job)
    return JsonResponse({"success": True, "job": job_json(job)})


@api_methods("POST")
@api_login_required
@owned_job
def job_stop(request: HttpRequest, job: TrainingJob) -> JsonResponse:
    jobs.stop_job(job)
    return JsonResponse({"success": True, "job": job_json(job)})
