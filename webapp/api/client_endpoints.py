"""A job's clients, as the dashboard polls them: the snapshot of every client, one client's
round history, and one client's timeline of status changes."""

from django.http import HttpRequest, HttpResponse, JsonResponse

from webapp import jobs, tracking
from webapp.api.errors import json_error
from webapp.api.freshness import conditional_snapshot, snapshot_response
from webapp.api.guards import api_methods, owned_job
from webapp.api.serializers import clients_snapshot, event_json
from webapp.auth import api_login_required
from webapp.models import ClientEvent, TrainingJob

# A client's timeline shows its latest events; a long job would otherwise grow it unbounded.
MAX_EVENTS = 500


@api_methods("GET")
@api_login_required
@conditional_snapshot
@owned_job
def get_clients_data(request: HttpRequest, job: TrainingJob) -> HttpResponse:
    jobs.reconcile_with_flower(job)  # the dashboard's poll: a dead run must not look alive
    return snapshot_response(job, clients_snapshot)


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
            "events": [event_json(*event) for event in reversed(latest[:MAX_EVENTS])],
            "truncated": len(latest) > MAX_EVENTS,
        }
    )
