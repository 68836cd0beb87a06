"""Browser sessions with CSRF, and bearer tokens for scripts."""

from datetime import timedelta

import pytest
from django.core.management import call_command
from django.test import Client

from webapp.models import ApiToken
from webapp.tests.factories import make_job

pytestmark = pytest.mark.django_db


def test_it_creates_a_token_that_authenticates_scripts(owner, capsys):
    call_command("create_api_token", "alice")
    key = capsys.readouterr().out.strip()

    response = Client(HTTP_AUTHORIZATION=f"Bearer {key}").get("/api/jobs/")

    assert response.status_code == 200
    stored = ApiToken.objects.get(user=owner)
    assert stored.key_hash != key and key not in stored.key_hash  # only the hash is kept


def test_it_refuses_a_revoked_token(owner, owner_token):
    ApiToken.objects.update(revoked=True)

    response = Client(HTTP_AUTHORIZATION=f"Bearer {owner_token}").get("/api/jobs/")

    assert response.status_code == 401
    assert response.json() == {"success": False, "error": "invalid or revoked API token"}


def test_it_refuses_an_unknown_token(db):
    response = Client(HTTP_AUTHORIZATION="Bearer ft_nope").get("/api/jobs/")

    assert response.status_code == 401


def test_it_refuses_the_token_of_a_deactivated_user(owner, owner_token):
    owner.is_active = False
    owner.save()

    response = Client(HTTP_AUTHORIZATION=f"Bearer {owner_token}").get("/api/jobs/")

    assert response.status_code == 401


def test_it_records_a_tokens_last_use_at_most_once_a_minute(owner, owner_token):
    script = Client(HTTP_AUTHORIZATION=f"Bearer {owner_token}")
    script.get("/api/jobs/")
    first_use = ApiToken.objects.get(user=owner).last_used_at
    assert first_use is not None

    script.get("/api/jobs/")
    assert ApiToken.objects.get(user=owner).last_used_at == first_use  # not a write per poll

    ApiToken.objects.update(last_used_at=first_use - timedelta(seconds=61))
    script.get("/api/jobs/")
    assert ApiToken.objects.get(user=owner).last_used_at > first_use


def test_it_enforces_csrf_on_browser_writes(owner):
    job = make_job(owner, status="running")
    browser = Client(enforce_csrf_checks=True)
    browser.force_login(owner)

    response = browser.post(f"/api/jobs/{job.pk}/stop/")

    assert response.status_code == 403
    job.refresh_from_db()
    assert job.status == "running"


def test_it_redirects_anonymous_pages_to_the_login(client):
    for path in ["/jobs/", "/datasets/", "/jobs/1/"]:
        response = client.get(path)
        assert response.status_code == 302
        assert response["Location"].startswith("/accounts/login/")


def test_it_hides_another_users_dashboard_page(owner, outsider_client):
    job = make_job(owner)

    assert outsider_client.get(f"/jobs/{job.pk}/").status_code == 404
    assert outsider_client.get(f"/jobs/{job.pk}/model/").status_code == 404


def test_it_answers_a_session_post_without_csrf_token_with_a_json_403(owner):
    browser = Client(enforce_csrf_checks=True)
    browser.force_login(owner)

    response = browser.post("/api/jobs/", {}, content_type="application/json")

    assert response.status_code == 403
    body = response.json()
    assert body["success"] is False
    assert body["error"].startswith("CSRF check failed")


def test_it_keeps_djangos_csrf_page_for_pages(owner):
    browser = Client(enforce_csrf_checks=True)
    browser.force_login(owner)

    response = browser.post("/jobs/start/", {})

    assert response.status_code == 403
    assert response["Content-Type"].startswith("text/html")
