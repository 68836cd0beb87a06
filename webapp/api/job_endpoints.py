"""Training jobs for scripts: list and start them, read one, stop one.

Starting validates the body field by field (webapp.api.parsing) and then against the caller's
sites (webapp.jobs.create_job); both kinds of refusal are a 400 that says what to change.
"""

from typing import Any

from django.http import HttpRequest, HttpResponse, JsonResponse

from webapp import jobs
from webapp.api import parsing
from webapp.api.errors import json_error
from webapp.api.freshness import versioned_response
from webapp.api.guards import api_methods, owned_job
from webapp.api.serializers import job_json
from webapp.auth import api_login_required
from webapp.models import TrainingJob

MAX_LISTED_JOBS = 200


def parse_job_request(data: dict[str, Any]) -> jobs.JobRequest:
    raw = data.get("datasets")
    if not isinstance(raw, list):
        raise parsing.BadRequest("datasets: must be a list of {connection_id, dataset_name}")
    selections = []
    for item in raw:
        if not isinstance(item, dict):
            raise parsing.BadRequest("datasets: each item must be {connection_id, dataset_name}")
        selections.append((parsing.CONNECTION_ID.parse(item), parsing.DATASET_NAME.parse(item)))
    return jobs.JobRequest(
        name=parsing.JOB_NAME.parse(data),
        selections=selections,
        rounds=parsing.ROUNDS.parse(data),
        local_epochs=parsing.LOCAL_EPOCHS.parse(data),
        learning_rate=parsing.LEARNING_RATE.parse(data),
        min_clients=parsing.MIN_CLIENTS.parse(data, default=len(selections) or 1),
        alert_webhook_url=parsing.ALERT_WEBHOOK_URL.parse(data),
    )


@api_methods("GET", "POST")
@api_login_required
def job_collection(request: HttpRequest) -> JsonResponse:
    if request.method == "GET":
        owned = TrainingJob.objects.filter(owner=request.user)[:MAX_LISTED_JOBS]
        return JsonResponse({"success": True, "jobs": [job_json(j) for j in owned]})
    try:
        job = jobs.create_job(
            owner=request.user, request=parse_job_request(parsing.json_body(request))
        )
    except parsing.BadRequest as exc:  # also jobs.JobValidationError
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
    return versioned_response(
        request,
        job.tracking_version,
        lambda: JsonResponse({"success": True, "job": job_json(job)}),
    )


@api_methods("POST")
@api_login_required
@owned_job
def job_stop(request: HttpRequest, job: TrainingJob) -> JsonResponse:
    jobs.stop_job(job, by=request.user.get_username())
    return JsonResponse({"success": True, "job": job_json(job)})
