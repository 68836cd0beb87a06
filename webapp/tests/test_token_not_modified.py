"""A bearer token's unchanged poll: 304 from one query ahead of the middleware stack
(webapp.api.freshness.TokenNotModifiedMiddleware), and every other poll down the whole stack."""

from datetime import timedelta

import psycopg
import pytest
from django.conf import settings
from django.db import connection
from django.test import Client
from django.urls import reverse
from django.utils import timezone

from webapp import tracking
from webapp.api.freshness import TOKEN_FAST_PATHS
from webapp.models import ApiToken
from webapp.tests.factories import make_job, report

pytestmark = pytest.mark.django_db

# What a 304 shows besides its tag: the headers the security middleware adds on every path.
SECURITY_HEADERS = [
    "X-Frame-Options",
    "X-Content-Type-Options",
    "Referrer-Policy",
    "Cross-Origin-Opener-Policy",
]


@pytest.fixture
def poller(owner_token) -> Client:
    client = Client(HTTP_AUTHORIZATION=f"Bearer {owner_token}")
    client.get("/api/jobs/")  # records the token's use: the fast path needs a recent one
    return client


@pytest.fixture
def job(owner):
    return make_job(owner, status="running")


def clients_url(job) -> str:
    return f"/api/jobs/{job.pk}/clients/"


def tag_of(client: Client, job) -> str:
    return client.get(clients_url(job))["ETag"]


def test_it_answers_a_tokens_unchanged_poll_with_304_in_one_query(
    poller, job, django_assert_num_queries
):
    tag = tag_of(poller, job)

    with django_assert_num_queries(1) as captured:
        response = poller.get(clients_url(job), headers={"If-None-Match": tag})

    assert response.status_code == 304
    assert response.content == b""
    assert response["ETag"] == tag
    assert response["Cache-Control"] == "private, no-cache"
    sql = captured.captured_queries[0]["sql"]
    assert "key_hash" in sql and "tracking_version" in sql and "clients_status" not in sql


def test_it_sends_the_headers_of_the_full_paths_304(owner, owner_client, poller, job):
    tag = tag_of(poller, job)

    fast = poller.get(clients_url(job), headers={"If-None-Match": tag})
    full = owner_client.get(clients_url(job), headers={"If-None-Match": tag})

    assert fast.status_code == full.status_code == 304
    for header in ["ETag", "Cache-Control", *SECURITY_HEADERS]:
        assert fast[header] == full[header], header


def test_it_serves_the_new_snapshot_once_the_tracker_writes(poller, job):
    tag = tag_of(poller, job)
    client_id = next(iter(job.clients_status))
    report(job, client_id, 1, accuracy=0.8, loss=0.4)

    response = poller.get(clients_url(job), headers={"If-None-Match": tag})

    assert response.status_code == 200
    assert response["ETag"] != tag
    rows = {row["id"]: row for row in response.json()["clients"]}
    assert rows[client_id]["status"] == tracking.REPORTED


def test_it_refuses_a_revoked_token_with_a_current_tag(owner, poller, job):
    tag = tag_of(poller, job)
    ApiToken.objects.filter(user=owner).update(revoked=True)

    response = poller.get(clients_url(job), headers={"If-None-Match": tag})

    assert response.status_code == 401
    assert response.json() == {"success": False, "error": "invalid or revoked API token"}


def test_it_refuses_the_token_of_a_deactivated_user_with_a_current_tag(owner, poller, job):
    tag = tag_of(poller, job)
    type(owner).objects.filter(pk=owner.pk).update(is_active=False)

    response = poller.get(clients_url(job), headers={"If-None-Match": tag})

    assert response.status_code == 401


def test_it_hides_another_users_job_from_a_token_that_has_its_tag(outsider, poller, job):
    tag = tag_of(poller, job)
    outsider_client = Client(HTTP_AUTHORIZATION=f"Bearer {ApiToken.issue(outsider)[1]}")
    outsider_client.get("/api/jobs/")

    response = outsider_client.get(clients_url(job), headers={"If-None-Match": tag})

    assert response.status_code == 404
    assert response.json()["error"] == "job not found"


def test_it_records_a_tokens_use_through_the_full_path_once_a_minute(
    owner, poller, job, django_assert_num_queries
):
    tag = tag_of(poller, job)
    long_ago = timezone.now() - timedelta(minutes=5)
    ApiToken.objects.filter(user=owner).update(last_used_at=long_ago)

    response = poller.get(clients_url(job), headers={"If-None-Match": tag})

    assert response.status_code == 304
    assert ApiToken.objects.get(user=owner).last_used_at > long_ago
    with django_assert_num_queries(1):  # recorded: the next poll takes the fast path again
        assert poller.get(clients_url(job), headers={"If-None-Match": tag}).status_code == 304


def test_it_checks_the_host_before_answering(poller, job):
    tag = tag_of(poller, job)

    response = poller.get(
        clients_url(job), headers={"If-None-Match": tag}, HTTP_HOST="attacker.example"
    )

    assert response.status_code == 400


def test_it_leaves_other_endpoints_and_methods_to_the_full_path(
    poller, job, django_assert_num_queries
):
    detail = poller.get(f"/api/jobs/{job.pk}/")
    assert detail.status_code == 200

    # The job's own endpoint reconciles with Flower first: it has no such shortcut.
    with django_assert_num_queries(2):  # the token, the job
        again = poller.get(f"/api/jobs/{job.pk}/", headers={"If-None-Match": detail["ETag"]})
    assert again.status_code == 304

    stop = poller.post(f"/api/jobs/{job.pk}/clients/", headers={"If-None-Match": "*"})
    assert stop.status_code == 405


def test_it_answers_a_job_id_beyond_a_database_integer_with_404(poller):
    response = poller.get(f"/api/jobs/{2**70}/clients/", headers={"If-None-Match": '"1-never"'})

    assert response.status_code == 404
    assert response.json() == {"success": False, "error": "job not found"}


def test_its_fast_paths_name_endpoints_that_exist():
    """A renamed URL would silently lose its fast path: the registry names real ones."""
    assert TOKEN_FAST_PATHS
    for url_name in TOKEN_FAST_PATHS:
        assert reverse(url_name, kwargs={"job_id": 1})


@pytest.mark.skipif(
    settings.DATABASES["default"]["ENGINE"] != "django.db.backends.postgresql",
    reason="a server-side disconnect needs a database server",
)
@pytest.mark.django_db(transaction=True)
def test_it_reconnects_when_its_kept_database_connection_has_died(poller, job):
    """The fast path's query stands in for Django's health check: a connection the server
    has dropped is replaced, and the poll is answered, not a 500."""
    tag = tag_of(poller, job)
    connection.ensure_connection()
    backend_pid = connection.connection.info.backend_pid
    params = connection.get_connection_params()
    with psycopg.connect(
        **{k: v for k, v in params.items() if k not in ("cursor_factory", "context")},
        autocommit=True,
    ) as admin:
        admin.execute("SELECT pg_terminate_backend(%s)", [backend_pid])

    response = poller.get(clients_url(job), headers={"If-None-Match": tag})

    assert response.status_code == 304
    assert connection.connection.info.backend_pid != backend_pid
