"""ETag / 304 on the polled snapshots: GET /api/jobs/<id>/clients/ and /api/jobs/<id>/."""

from datetime import UTC, datetime, timedelta

import pytest

from webapp import jobs, tracking
from webapp.models import TrainingJob
from webapp.tests.factories import make_job, report

pytestmark = pytest.mark.django_db

T0 = datetime(2026, 1, 1, 12, 0, 0, tzinfo=UTC)


@pytest.fixture
def clock(monkeypatch):
    """The API's idea of "now", moved by the test (the tracker gets its own clock)."""
    current = {"now": T0}
    monkeypatch.setattr("django.utils.timezone.now", lambda: current["now"])
    return current


def clients_url(job: TrainingJob) -> str:
    return f"/api/jobs/{job.pk}/clients/"


def connected(job: TrainingJob, client_id: str, at: datetime) -> None:
    tracker = tracking.ClientTracker(job.pk, now=lambda: at)
    tracker.connected(client_id, node_id=7)
    tracker.flush()


def test_it_answers_304_with_no_body_while_the_snapshot_is_unchanged(owner, owner_client):
    job = make_job(owner, status="running")
    first = owner_client.get(clients_url(job))
    assert first.status_code == 200
    assert first["Cache-Control"] == "private, no-cache"

    again = owner_client.get(clients_url(job), headers={"If-None-Match": first["ETag"]})

    assert again.status_code == 304
    assert again.content == b""
    assert again["ETag"] == first["ETag"]
    assert again["Cache-Control"] == "private, no-cache"


def test_it_answers_304_with_one_query_beyond_the_session(
    owner, owner_client, django_assert_num_queries
):
    job = make_job(owner, status="running")
    tag = owner_client.get(clients_url(job))["ETag"]

    # session + user (login) + the job's tracking_version: never the clients_status blob.
    with django_assert_num_queries(3) as captured:
        response = owner_client.get(clients_url(job), headers={"If-None-Match": tag})

    assert response.status_code == 304
    assert "clients_status" not in captured.captured_queries[-1]["sql"]


def test_it_serves_the_new_snapshot_after_a_tracking_flush(owner, owner_client):
    job = make_job(owner, status="running")
    tag = owner_client.get(clients_url(job))["ETag"]
    report(job, next(iter(job.clients_status)), 1, accuracy=0.9, loss=0.2)

    response = owner_client.get(clients_url(job), headers={"If-None-Match": tag})

    assert response.status_code == 200
    assert response["ETag"] != tag
    assert 0.9 in [c["accuracy"] for c in response.json()["clients"]]


@pytest.mark.parametrize(
    "change",
    [
        pytest.param(lambda job: jobs.mark_running(job.pk), id="mark_running"),
        pytest.param(lambda job: jobs.finish_job(job.pk, "completed"), id="finish_job"),
        pytest.param(
            lambda job: jobs.end_job_early(job.pk, "failed", "boom", 0), id="end_job_early"
        ),
        pytest.param(
            lambda job: (lambda t: (t.job(current_round=2), t.flush()))(
                tracking.ClientTracker(job.pk)
            ),
            id="current_round",
        ),
    ],
)
def test_it_serves_a_new_snapshot_after_the_job_changes(owner, owner_client, change):
    job = make_job(owner, status="pending")
    tag = owner_client.get(clients_url(job))["ETag"]

    change(job)
    response = owner_client.get(clients_url(job), headers={"If-None-Match": tag})

    assert response.status_code == 200
    job.refresh_from_db()
    assert response.json()["job"]["status"] == job.status
    assert response.json()["job"]["current_round"] == job.current_round


@pytest.fixture
def silent_client(owner, settings) -> tuple[TrainingJob, str]:
    """A running job with a client last heard from at T0, offline after 30 s of silence."""
    settings.CLIENT_TIMEOUT_THRESHOLD = 30
    job = make_job(owner, status="running")
    client_id = next(iter(job.clients_status))
    connected(job, client_id, at=T0)
    return job, client_id


def test_it_expires_the_tag_when_a_silent_client_turns_offline(owner_client, clock, silent_client):
    job, client_id = silent_client
    clock["now"] = T0 + timedelta(seconds=10)
    first = owner_client.get(clients_url(job))
    assert first["ETag"].endswith(f'-{int((T0 + timedelta(seconds=30)).timestamp())}"')

    clock["now"] = T0 + timedelta(seconds=29)
    assert (
        owner_client.get(clients_url(job), headers={"If-None-Match": first["ETag"]}).status_code
        == 304
    )

    clock["now"] = T0 + timedelta(seconds=31)
    response = owner_client.get(clients_url(job), headers={"If-None-Match": first["ETag"]})

    assert response.status_code == 200
    row = next(c for c in response.json()["clients"] if c["id"] == client_id)
    assert row["status"] == "offline"


def test_it_never_serves_a_cached_snapshot_past_a_derived_status_change(
    owner_client, clock, silent_client
):
    job, client_id = silent_client

    def status_at(seconds: int) -> str:
        clock["now"] = T0 + timedelta(seconds=seconds)
        rows = owner_client.get(clients_url(job)).json()["clients"]
        return next(c["status"] for c in rows if c["id"] == client_id)

    # The first answer is rendered and kept; the next ones without If-None-Match reuse it
    # only while nothing derived from the clock can have changed.
    assert [status_at(10), status_at(29), status_at(31)] == ["connected", "connected", "offline"]


def test_it_tags_an_ended_job_as_never_expiring(owner, owner_client):
    job = make_job(owner, status="completed")

    response = owner_client.get(clients_url(job))

    assert response["ETag"].endswith('-never"')


def test_it_ignores_a_tag_with_another_version_or_garbage(owner, owner_client):
    job = make_job(owner, status="completed")
    version = TrainingJob.objects.get(pk=job.pk).tracking_version

    for tag in [f'"{version + 1}-never"', '"garbage"', f'"{version}-soon"', "*"]:
        response = owner_client.get(clients_url(job), headers={"If-None-Match": tag})
        assert response.status_code == 200, tag


def test_it_never_answers_304_for_another_users_job(owner, outsider_client, owner_client):
    job = make_job(owner, status="completed")
    tag = owner_client.get(clients_url(job))["ETag"]

    response = outsider_client.get(clients_url(job), headers={"If-None-Match": tag})

    assert response.status_code == 404
    assert response.json() == {"success": False, "error": "job not found"}


def test_it_answers_304_on_the_job_detail_until_the_job_changes(owner, owner_client):
    job = make_job(owner, status="running")
    url = f"/api/jobs/{job.pk}/"
    tag = owner_client.get(url)["ETag"]
    assert owner_client.get(url, headers={"If-None-Match": tag}).status_code == 304

    jobs.finish_job(job.pk, "completed")
    response = owner_client.get(url, headers={"If-None-Match": tag})

    assert response.status_code == 200
    assert response.json()["job"]["status"] == "completed"


def test_it_answers_a_job_id_beyond_a_database_integer_with_404(owner_client):
    response = owner_client.get(
        f"/api/jobs/{2**70}/clients/", headers={"If-None-Match": '"1-never"'}
    )

    assert response.status_code == 404
    assert response.json() == {"success": False, "error": "job not found"}
