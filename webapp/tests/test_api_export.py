"""GET /api/jobs/<id>/history.csv: the per-client, per-round history as a spreadsheet."""

import csv
import io

import pytest

from webapp import tracking
from webapp.api.history_endpoints import HISTORY_CSV_HEADER
from webapp.tests.factories import make_job, report

pytestmark = pytest.mark.django_db


def rows_of(response) -> list[dict[str, str]]:
    return list(csv.DictReader(io.StringIO(response.content.decode())))


def test_it_exports_one_row_per_client_per_round_as_an_attachment(owner, owner_client):
    job = make_job(owner, status="running")
    barcelona, madrid = list(job.clients_status)
    report(job, barcelona, 1, accuracy=0.75, loss=0.6)
    report(job, barcelona, 2, accuracy=0.8, loss=0.4)
    report(job, madrid, 1, accuracy=0.9, loss=0.3)
    tracker = tracking.ClientTracker(job.pk)
    tracker.training(madrid, 2)
    tracker.failed(madrid, 2, "the site's dataset changed")
    tracker.flush()

    response = owner_client.get(f"/api/jobs/{job.pk}/history.csv")

    assert response.status_code == 200
    assert response["Content-Type"] == "text/csv; charset=utf-8"
    assert response["Content-Disposition"] == (
        f'attachment; filename="fedtrack_job_{job.pk}_history.csv"'
    )
    assert response.content.decode().splitlines()[0] == ",".join(HISTORY_CSV_HEADER)
    rows = rows_of(response)
    got = {(r["client_id"], r["round"]): r for r in rows}
    assert len(rows) == 4
    assert got[(barcelona, "2")]["connection_name"] == "Hospital Barcelona"
    assert got[(barcelona, "2")]["dataset"] == "breast_cancer"
    assert float(got[(barcelona, "2")]["accuracy"]) == 0.8
    assert float(got[(barcelona, "2")]["loss"]) == 0.4
    assert got[(barcelona, "2")]["samples"] == "80"
    assert float(got[(barcelona, "2")]["response_time"]) == 2.5
    assert got[(barcelona, "2")]["status"] == "reported"
    assert got[(barcelona, "2")]["recorded_at"]
    assert got[(madrid, "2")]["status"] == "error"
    assert got[(madrid, "2")]["accuracy"] == ""


def test_it_defuses_names_that_a_spreadsheet_would_run_as_formulas(owner, owner_client):
    job = make_job(
        owner, [('=HYPERLINK("http://evil","x")', "@SUM(A1)"), ("+1", "-2"), ("Fine", "ok")]
    )
    for client_id in job.clients_status:
        report(job, client_id, 1, accuracy=0.5, loss=0.5)

    rows = rows_of(owner_client.get(f"/api/jobs/{job.pk}/history.csv"))

    names = {r["connection_name"]: r["dataset"] for r in rows}
    assert names == {
        '\'=HYPERLINK("http://evil","x")': "'@SUM(A1)",
        "'+1": "'-2",
        "Fine": "ok",
    }


def test_it_exports_only_the_header_for_a_job_without_rounds(owner, owner_client):
    job = make_job(owner)

    response = owner_client.get(f"/api/jobs/{job.pk}/history.csv")

    assert response.content.decode().splitlines() == [",".join(HISTORY_CSV_HEADER)]


def test_it_hides_another_users_job(owner, outsider_client):
    job = make_job(owner)

    response = outsider_client.get(f"/api/jobs/{job.pk}/history.csv")

    assert response.status_code == 404
    assert response.json() == {"success": False, "error": "job not found"}


def test_it_answers_401_json_to_anonymous_callers(client, owner):
    job = make_job(owner)

    assert client.get(f"/api/jobs/{job.pk}/history.csv").status_code == 401
