"""A job's round history as CSV: one row per client per round it took part in or missed."""

import csv
from collections.abc import Iterator
from typing import Any

from django.http import HttpRequest, HttpResponse

from webapp import tracking
from webapp.api.guards import api_methods, owned_job
from webapp.auth import api_login_required
from webapp.models import ClientEvent, ClientRoundMetric, TrainingJob

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
# The status of a round that ended without a report from the client.
MISSED = "missed"
# Spreadsheets run a cell that starts with one of these as a formula (CSV injection).
_FORMULA_PREFIXES = ("=", "+", "-", "@", "\t", "\r")


def _csv_cell(value: Any) -> Any:
    if isinstance(value, str) and value.startswith(_FORMULA_PREFIXES):
        return "'" + value
    return "" if value is None else value


def history_rows(job: TrainingJob) -> Iterator[list[Any]]:
    """One row per client per round it took part in or missed, from the history and event
    rows and the rounds each client missed.

    A round's status is the client's last event in it (reported, error, completed, …), so a
    round that failed has a row too, with empty metrics; a round that ended without a report
    from the client is `missed`, also when nothing happened to it in that round (its site was
    away the whole time).
    """
    round_status: dict[tuple[str, int], str] = {}
    for client_id, round_, status in (
        ClientEvent.objects.filter(job=job, round__gt=0)
        .order_by("created_at", "id")
        .values_list("client_id", "round", "new_status")
        .iterator()
    ):
        round_status[(client_id, round_)] = status
    for client_id, entry in (job.clients_status or {}).items():
        for round_ in entry.get("rounds_missed", []):
            round_status[(client_id, round_)] = MISSED
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
