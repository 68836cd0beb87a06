"""Every URL in the project, generated from the URL conf: nobody sees what isn't theirs.

A new URL pattern makes `test_every_url_pattern_is_covered` fail until it is added to
`ROUTES` (how to fill it, which methods it answers, whether it changes state), so no
endpoint can skip the ownership, login and CSRF checks below.
"""

from dataclasses import dataclass

import pytest
from django.core.cache import cache
from django.test import Client
from django.urls import URLPattern, URLResolver, get_resolver

from webapp.models import Connection, TrainingJob
from webapp.tests.factories import make_job

pytestmark = pytest.mark.django_db

# Patterns that are not the app's own: the admin has its own staff-only login, and the
# login/logout views are public by nature.
ALLOWED_PREFIXES = ("admin/",)
PUBLIC_ROUTES = {"accounts/login/", "accounts/logout/"}

SECRET_JOB = "alice-secret-job"
SECRET_SITE = "Alice Secret Hospital"


@dataclass(frozen=True)
class Route:
    methods: tuple[str, ...]  # the methods the view answers (others: 405)
    changes_state: bool = False


ROUTES: dict[str, Route] = {
    "": Route(("GET",)),
    "jobs/": Route(("GET",)),
    "jobs/start/": Route(("POST",), changes_state=True),
    "jobs/<int:job_id>/": Route(("GET",)),
    "jobs/<int:job_id>/model/": Route(("GET",)),
    "datasets/": Route(("GET",)),
    "connections/": Route(("POST",), changes_state=True),
    "api/connections/": Route(("GET", "POST"), changes_state=True),
    "api/jobs/": Route(("GET", "POST"), changes_state=True),
    "api/jobs/<int:job_id>/": Route(("GET",)),
    "api/jobs/<int:job_id>/stop/": Route(("POST",), changes_state=True),
    "api/jobs/<int:job_id>/clients/": Route(("GET",)),
    "api/jobs/<int:job_id>/clients/<str:client_id>/performance/": Route(("GET",)),
    "api/jobs/<int:job_id>/clients/<str:client_id>/events/": Route(("GET",)),
    "api/jobs/<int:job_id>/history.csv": Route(("GET",)),
    # Holds no data, but nothing answers an anonymous caller (webapp/openapi.py).
    "api/schema/": Route(("GET",)),
}


def walk(resolver: URLResolver, prefix: str = "") -> list[tuple[str, URLPattern]]:
    found = []
    for entry in resolver.url_patterns:
        route = prefix + str(entry.pattern)
        if isinstance(entry, URLResolver):
            found.extend(walk(entry, route))
        else:
            found.append((route, entry))
    return found


def project_routes() -> list[str]:
    return [
        route
        for route, _ in walk(get_resolver())
        if not route.startswith(ALLOWED_PREFIXES) and route not in PUBLIC_ROUTES
    ]


def fill(route: str, job: TrainingJob) -> str:
    """The route with the owner's object ids; an unknown parameter fails the test."""
    values = {"job_id": str(job.pk), "client_id": next(iter(job.clients_status))}
    path = route
    for converter in ("int", "str", "slug", "uuid", "path"):
        for name, value in values.items():
            path = path.replace(f"<{converter}:{name}>", value)
    assert "<" not in path, f"{route}: the ownership test does not know how to fill {path!r}"
    return "/" + path


@pytest.fixture
def alice_job(owner) -> TrainingJob:
    job = make_job(owner, sites=[(SECRET_SITE, "ds")], name=SECRET_JOB, status="completed")
    TrainingJob.objects.filter(pk=job.pk).update(model_file=__file__)
    return job


def test_every_url_pattern_is_covered():
    unknown = sorted(set(project_routes()) - set(ROUTES))
    stale = sorted(set(ROUTES) - set(project_routes()))

    assert not unknown, f"add these URL patterns to ROUTES (and so to the checks): {unknown}"
    assert not stale, f"these ROUTES no longer exist: {stale}"


@pytest.mark.parametrize("route", sorted(ROUTES))
def test_an_outsider_never_sees_or_touches_the_owners_objects(route, alice_job, outsider_client):
    path = fill(route, alice_job)
    for method in ROUTES[route].methods:
        response = getattr(outsider_client, method.lower())(path, follow=True)
        body = response.content.decode()
        if "<" in route:  # an object id in the URL: someone else's object is "not found"
            assert response.status_code == 404, f"{method} {path}"
            if path.startswith("/api/"):
                assert response.json()["success"] is False
        assert SECRET_JOB not in body, f"{method} {path} leaks the owner's job"
        assert SECRET_SITE not in body, f"{method} {path} leaks the owner's connection"
    alice_job.refresh_from_db()
    assert alice_job.status == "completed"
    assert TrainingJob.objects.count() == 1


def test_an_outsider_cannot_start_a_job_on_the_owners_connection(alice_job, outsider_client):
    connection = Connection.objects.get(name=SECRET_SITE)

    api = outsider_client.post(
        "/api/jobs/",
        {"name": "x", "datasets": [{"connection_id": connection.pk, "dataset_name": "ds"}]},
        content_type="application/json",
    )
    page = outsider_client.post(
        "/jobs/start/",
        {
            "name": "x",
            "datasets": [f"{connection.pk}::ds"],
            "rounds": 1,
            "local_epochs": 1,
            "learning_rate": 0.01,
            "min_clients": 1,
        },
        follow=True,
    )

    assert api.status_code == 400
    assert api.json()["error"] == f"datasets: unknown connection id {connection.pk}"
    assert page.redirect_chain == [("/datasets/", 302)]
    assert f"Datasets: unknown connection id {connection.pk}" in page.content.decode()
    assert TrainingJob.objects.count() == 1


@pytest.mark.parametrize("route", sorted(ROUTES))
def test_anonymous_callers_must_log_in(route, alice_job, client):
    path = fill(route, alice_job)
    for method in ROUTES[route].methods:
        response = getattr(client, method.lower())(path, follow=True)
        if path.startswith("/api/"):
            assert response.status_code == 401, f"{method} {path}"
            assert response.json() == {"success": False, "error": "authentication required"}
        else:
            assert response.redirect_chain, f"{method} {path} answered without a login"
            assert response.redirect_chain[-1][0].startswith("/accounts/login/?next="), path


@pytest.mark.parametrize("route", sorted(r for r, spec in ROUTES.items() if spec.changes_state))
def test_every_state_changing_browser_request_needs_the_csrf_token(route, owner):
    job = make_job(owner, status="running")
    browser = Client(enforce_csrf_checks=True)
    browser.force_login(owner)
    before = (TrainingJob.objects.count(), Connection.objects.count())

    response = browser.post(fill(route, job), {"name": "x"})

    assert response.status_code == 403
    assert b"CSRF" in response.content
    job.refresh_from_db()
    assert job.status == "running"
    assert (TrainingJob.objects.count(), Connection.objects.count()) == before


def test_a_bearer_token_script_needs_no_csrf_token(owner, owner_token):
    job = make_job(owner, status="running")
    script = Client(enforce_csrf_checks=True, HTTP_AUTHORIZATION=f"Bearer {owner_token}")

    response = script.post(f"/api/jobs/{job.pk}/stop/")

    assert response.status_code == 200
    job.refresh_from_db()
    assert job.status == "stopped"


@pytest.mark.parametrize("caller", ["anonymous", "owner"])
def test_an_unknown_api_url_answers_json_404(caller, client, owner_client):
    browser = client if caller == "anonymous" else owner_client

    api = browser.get("/api/no-such-thing/")
    page = browser.get("/no-such-page/")

    assert api.status_code == 404
    assert api.json() == {"success": False, "error": "no such API endpoint"}
    assert page.status_code == 404
    assert page["Content-Type"].startswith("text/html")


def test_an_api_crash_answers_json_500(owner, owner_token):
    cache.clear()  # the job's Flower run is looked up at once
    job = make_job(owner, status="running", flower_run_id="corrupt")  # int() will fail
    script = Client(HTTP_AUTHORIZATION=f"Bearer {owner_token}", raise_request_exception=False)

    response = script.get(f"/api/jobs/{job.pk}/")

    assert response.status_code == 500
    assert response.json() == {"success": False, "error": "internal server error"}
