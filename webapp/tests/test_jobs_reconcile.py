"""A job never stays `running` without a live ServerApp: reconciliation on read."""

from datetime import timedelta

import pytest
from django.core.cache import cache
from django.test import Client
from django.utils import timezone

from webapp import jobs
from webapp.models import ClientEvent
from webapp.tests.conftest import free_port
from webapp.tests.factories import make_job

pytestmark = pytest.mark.django_db


@pytest.fixture(autouse=True)
def unreachable_superlink(settings):
    settings.FLOWER_SUPERLINK = f"127.0.0.1:{free_port()}"
    settings.FLOWER_CONTROL_TIMEOUT = 2
    settings.JOB_SERVER_TIMEOUT = 60
    cache.clear()  # reconciliation is throttled per job through the cache
    yield
    cache.clear()


def running_job(owner, silent_for: float):
    return make_job(
        owner,
        status="running",
        flower_run_id="1234",
        current_round=2,
        server_seen_at=timezone.now() - timedelta(seconds=silent_for),
    )


def test_it_fails_a_running_job_whose_serverapp_went_silent(owner):
    job = running_job(owner, silent_for=90)

    jobs.reconcile_with_flower(job)

    assert job.status == "failed"
    assert "ServerApp has been silent for 90 s" in job.error_message
    assert "could not list runs on the Flower SuperLink" in job.error_message
    assert {e["status"] for e in job.clients_status.values()} == {"stopped"}
    assert ClientEvent.objects.filter(job=job, new_status="stopped", round=2).count() == 2


def test_it_leaves_a_job_alone_when_only_the_superlink_is_unreachable(owner):
    job = running_job(owner, silent_for=5)

    jobs.reconcile_with_flower(job)

    job.refresh_from_db()
    assert job.status == "running"


def test_it_asks_at_most_once_per_interval(owner):
    job = running_job(owner, silent_for=5)
    jobs.reconcile_with_flower(job)
    job.server_seen_at = timezone.now() - timedelta(seconds=600)
    job.save()

    jobs.reconcile_with_flower(job)  # throttled: the previous answer still stands

    job.refresh_from_db()
    assert job.status == "running"


@pytest.mark.parametrize("path", ["", "clients/"])
def test_the_dashboard_poll_reconciles_a_dead_job(owner, owner_token, path):
    job = running_job(owner, silent_for=600)
    api = Client(HTTP_AUTHORIZATION=f"Bearer {owner_token}")

    api.get(f"/api/jobs/{job.pk}/{path}")
    body = api.get(f"/api/jobs/{job.pk}/").json()

    assert body["job"]["status"] == "failed"
    assert "ServerApp has been silent for 600 s" in body["job"]["error_message"]
