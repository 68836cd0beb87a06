"""The OpenAPI document (webapp/openapi.yaml, served at /api/schema/) against the live app.

Two halves: schemathesis generates requests for every operation and checks that each answer
is documented (status, content type, headers, body schema); and a table provokes every status
code the document promises, validates the answer with schemathesis and records it as the
example docs/api.md shows (see api_examples.py).
"""

import re
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import pytest
import schemathesis
import yaml
from django.test import Client
from django.utils import timezone
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from schemathesis.checks import not_a_server_error
from schemathesis.specs.openapi.checks import (
    content_type_conformance,
    response_headers_conformance,
    response_schema_conformance,
    status_code_conformance,
)

from webapp import tracking
from webapp.models import TrainingJob
from webapp.openapi import SCHEMA_PATH
from webapp.tests import api_examples
from webapp.tests.conftest import free_port, register
from webapp.tests.factories import make_job

pytestmark = pytest.mark.django_db(transaction=True)

CHECKS = [
    not_a_server_error,
    status_code_conformance,
    content_type_conformance,
    response_headers_conformance,
    response_schema_conformance,
]
HTTP_METHODS = {"get", "post", "put", "patch", "delete"}


@pytest.fixture
def no_superlink(settings) -> None:
    """A SuperLink address where nothing listens: no request may reach someone's real one."""
    settings.FLOWER_SUPERLINK = f"127.0.0.1:{free_port()}"
    settings.FLOWER_CONTROL_TIMEOUT = 2


@pytest.fixture
def live_schema(live_server, owner_token, no_superlink):
    return schemathesis.openapi.from_url(
        f"{live_server.url}/api/schema/", headers={"Authorization": f"Bearer {owner_token}"}
    )


def documented_operations() -> list[tuple[str, str]]:
    document = yaml.safe_load(SCHEMA_PATH.read_text())
    return [
        (path, method.upper())
        for path, item in document["paths"].items()
        for method in item
        if method in HTTP_METHODS
    ]


# schemathesis.pytest.from_fixture does not run on pytest 9.2 (it reads a private attribute),
# so each operation's generated cases are driven by hypothesis directly.
@pytest.mark.parametrize(
    ("path", "method"), [pytest.param(*op, id=" ".join(op)) for op in documented_operations()]
)
def test_every_generated_request_gets_a_documented_answer(
    path, method, live_schema, live_server, owner_token, data
):
    @given(case=live_schema[path][method].as_strategy(), real_ids=st.booleans())
    @settings(max_examples=15, deadline=None, suppress_health_check=list(HealthCheck))
    def check(case, real_ids: bool) -> None:
        if real_ids and case.path_parameters:
            # Random ids only ever meet a 404: half the cases address the caller's real job.
            case.path_parameters["job_id"] = data.job.pk
            if "client_id" in case.path_parameters:
                case.path_parameters["client_id"] = data.client_id
        case.call_and_validate(
            base_url=live_server.url,
            headers={"Authorization": f"Bearer {owner_token}"},
            checks=CHECKS,
        )

    check()


# --- every documented status, provoked on purpose and recorded as an example ---------------


@dataclass
class Data:
    owner_token: str
    job: TrainingJob
    client_id: str
    others_job: TrainingJob
    connection_ids: list[int]
    session_key: str = ""


@dataclass(frozen=True)
class Scenario:
    name: str  # <operationId>-<status>: the example's file name
    path: str  # the documented path
    method: str  # the documented operation
    status: int
    url: Callable[[Data], str]
    auth: str = "token"  # token | none | bad | session (a logged-in browser without CSRF token)
    body: Callable[[Data], Any] | None = None
    send_method: str | None = None  # another method than the operation's (405)
    headers: Callable[[Data], dict[str, str]] | None = None


def _job_url(suffix: str = "") -> Callable[[Data], str]:
    return lambda d: f"/api/jobs/{d.job.pk}/{suffix}"


def _current_etag(suffix: str = "") -> Callable[[Data], dict[str, str]]:
    """If-None-Match with the tag the endpoint gives now: the next answer is a 304."""

    def headers(d: Data) -> dict[str, str]:
        script = Client(HTTP_AUTHORIZATION=f"Bearer {d.owner_token}")
        return {"If-None-Match": script.get(_job_url(suffix)(d))["ETag"]}

    return headers


SCENARIOS = [
    Scenario("api_schema-200", "/api/schema/", "GET", 200, lambda d: "/api/schema/"),
    Scenario("api_schema-401", "/api/schema/", "GET", 401, lambda d: "/api/schema/", auth="none"),
    Scenario(
        "api_schema-405", "/api/schema/", "GET", 405, lambda d: "/api/schema/", send_method="POST"
    ),
    Scenario(
        "list_connections-200", "/api/connections/", "GET", 200, lambda d: "/api/connections/"
    ),
    Scenario(
        "list_connections-401",
        "/api/connections/",
        "GET",
        401,
        lambda d: "/api/connections/",
        auth="bad",
    ),
    Scenario(
        "list_connections-405",
        "/api/connections/",
        "GET",
        405,
        lambda d: "/api/connections/",
        send_method="DELETE",
    ),
    Scenario(
        "create_connection-201",
        "/api/connections/",
        "POST",
        201,
        lambda d: "/api/connections/",
        body=lambda d: {
            "name": "Hospital Lisboa",
            "ip": "10.20.0.15",
            "port": 5000,
            "token": "the-site-token",
        },
    ),
    Scenario(
        "create_connection-400",
        "/api/connections/",
        "POST",
        400,
        lambda d: "/api/connections/",
        body=lambda d: {"name": "Hospital Lisboa", "ip": "10.20.0.15", "port": 70000, "token": "t"},
    ),
    Scenario(
        "create_connection-401",
        "/api/connections/",
        "POST",
        401,
        lambda d: "/api/connections/",
        auth="bad",
        body=lambda d: {"name": "Hospital Lisboa", "ip": "10.20.0.15", "token": "t"},
    ),
    Scenario(
        "create_connection-405",
        "/api/connections/",
        "POST",
        405,
        lambda d: "/api/connections/",
        send_method="PUT",
    ),
    Scenario("list_jobs-200", "/api/jobs/", "GET", 200, lambda d: "/api/jobs/"),
    Scenario("list_jobs-401", "/api/jobs/", "GET", 401, lambda d: "/api/jobs/", auth="none"),
    Scenario(
        "list_jobs-405", "/api/jobs/", "GET", 405, lambda d: "/api/jobs/", send_method="PATCH"
    ),
    Scenario(
        "create_job-400",
        "/api/jobs/",
        "POST",
        400,
        lambda d: "/api/jobs/",
        body=lambda d: {
            "name": "breast cancer",
            "datasets": [
                {"connection_id": cid, "dataset_name": "breast_cancer"} for cid in d.connection_ids
            ],
            "rounds": 0,
        },
    ),
    Scenario(
        "create_job-401",
        "/api/jobs/",
        "POST",
        401,
        lambda d: "/api/jobs/",
        auth="bad",
        body=lambda d: {"name": "x", "datasets": []},
    ),
    Scenario(
        "create_job-403",
        "/api/jobs/",
        "POST",
        403,
        lambda d: "/api/jobs/",
        auth="none",
        body=lambda d: {"name": "x", "datasets": []},
    ),
    Scenario(
        "create_connection-403",
        "/api/connections/",
        "POST",
        403,
        lambda d: "/api/connections/",
        auth="session",
        body=lambda d: {"name": "Hospital Lisboa", "ip": "10.20.0.15", "token": "t"},
    ),
    Scenario(
        "create_job-405", "/api/jobs/", "POST", 405, lambda d: "/api/jobs/", send_method="PUT"
    ),
    Scenario(
        "create_job-503",
        "/api/jobs/",
        "POST",
        503,
        lambda d: "/api/jobs/",
        body=lambda d: {
            "name": "breast cancer, 3 hospitals",
            "datasets": [
                {"connection_id": cid, "dataset_name": "breast_cancer"} for cid in d.connection_ids
            ],
            "rounds": 3,
        },
    ),
    Scenario("get_job-200", "/api/jobs/{job_id}/", "GET", 200, _job_url()),
    Scenario("get_job-304", "/api/jobs/{job_id}/", "GET", 304, _job_url(), headers=_current_etag()),
    Scenario("get_job-401", "/api/jobs/{job_id}/", "GET", 401, _job_url(), auth="none"),
    Scenario(
        "get_job-404",
        "/api/jobs/{job_id}/",
        "GET",
        404,
        lambda d: f"/api/jobs/{d.others_job.pk}/",
    ),
    Scenario("get_job-405", "/api/jobs/{job_id}/", "GET", 405, _job_url(), send_method="DELETE"),
    Scenario("stop_job-200", "/api/jobs/{job_id}/stop/", "POST", 200, _job_url("stop/")),
    Scenario("stop_job-401", "/api/jobs/{job_id}/stop/", "POST", 401, _job_url("stop/"), "bad"),
    Scenario("stop_job-403", "/api/jobs/{job_id}/stop/", "POST", 403, _job_url("stop/"), "session"),
    Scenario(
        "stop_job-404",
        "/api/jobs/{job_id}/stop/",
        "POST",
        404,
        lambda d: f"/api/jobs/{d.others_job.pk}/stop/",
    ),
    Scenario(
        "stop_job-405",
        "/api/jobs/{job_id}/stop/",
        "POST",
        405,
        _job_url("stop/"),
        send_method="GET",
    ),
    Scenario(
        "get_clients_data-200", "/api/jobs/{job_id}/clients/", "GET", 200, _job_url("clients/")
    ),
    Scenario(
        "get_clients_data-304",
        "/api/jobs/{job_id}/clients/",
        "GET",
        304,
        _job_url("clients/"),
        headers=_current_etag("clients/"),
    ),
    Scenario(
        "get_clients_data-401",
        "/api/jobs/{job_id}/clients/",
        "GET",
        401,
        _job_url("clients/"),
        "bad",
    ),
    Scenario(
        "get_clients_data-404",
        "/api/jobs/{job_id}/clients/",
        "GET",
        404,
        lambda d: f"/api/jobs/{d.others_job.pk}/clients/",
    ),
    Scenario(
        "get_clients_data-405",
        "/api/jobs/{job_id}/clients/",
        "GET",
        405,
        _job_url("clients/"),
        send_method="POST",
    ),
]
PERFORMANCE = "/api/jobs/{job_id}/clients/{client_id}/performance/"
SCENARIOS += [
    Scenario(
        f"get_client_performance_data-{status}",
        PERFORMANCE,
        "GET",
        status,
        url,
        auth=auth,
        send_method=send_method,
    )
    for status, url, auth, send_method in [
        (200, lambda d: f"/api/jobs/{d.job.pk}/clients/{d.client_id}/performance/", "token", None),
        (401, lambda d: f"/api/jobs/{d.job.pk}/clients/{d.client_id}/performance/", "none", None),
        (
            404,
            lambda d: f"/api/jobs/{d.job.pk}/clients/client_00000000/performance/",
            "token",
            None,
        ),
        (
            405,
            lambda d: f"/api/jobs/{d.job.pk}/clients/{d.client_id}/performance/",
            "token",
            "POST",
        ),
    ]
]

EVENTS = "/api/jobs/{job_id}/clients/{client_id}/events/"
SCENARIOS += [
    Scenario(f"get_client_events-{status}", EVENTS, "GET", status, url, auth, send_method=method)
    for status, url, auth, method in [
        (200, lambda d: f"/api/jobs/{d.job.pk}/clients/{d.client_id}/events/", "token", None),
        (401, lambda d: f"/api/jobs/{d.job.pk}/clients/{d.client_id}/events/", "bad", None),
        (404, lambda d: f"/api/jobs/{d.job.pk}/clients/client_00000000/events/", "token", None),
        (405, lambda d: f"/api/jobs/{d.job.pk}/clients/{d.client_id}/events/", "token", "PUT"),
    ]
]
HISTORY = "/api/jobs/{job_id}/history.csv"
SCENARIOS += [
    Scenario(f"job_history_csv-{status}", HISTORY, "GET", status, url, auth, send_method=method)
    for status, url, auth, method in [
        (200, lambda d: f"/api/jobs/{d.job.pk}/history.csv", "token", None),
        (401, lambda d: f"/api/jobs/{d.job.pk}/history.csv", "none", None),
        (404, lambda d: f"/api/jobs/{d.others_job.pk}/history.csv", "token", None),
        (405, lambda d: f"/api/jobs/{d.job.pk}/history.csv", "token", "POST"),
    ]
]


def test_the_scenarios_provoke_every_documented_status_of_every_operation():
    document = yaml.safe_load(SCHEMA_PATH.read_text())
    documented = {
        (path, method.upper(), int(status))
        for path, item in document["paths"].items()
        for method, operation in item.items()
        if method in HTTP_METHODS
        for status in operation["responses"]
    }
    provoked = {(s.path, s.method, s.status) for s in SCENARIOS} | {FLOWER_SCENARIO_KEY}
    assert provoked == documented


@pytest.fixture
def data(owner, owner_token, outsider, site_apis) -> Data:
    """A running job in round 2 of 3: one client has reported twice, the other is training."""
    connections = register(owner, site_apis)
    job = make_job(
        owner,
        [(c.name, "breast_cancer") for c in connections[:2]],
        name="breast cancer, 2 hospitals",
        min_clients=2,
    )
    TrainingJob.objects.filter(pk=job.pk).update(status="running", started_at=timezone.now())
    tracker = tracking.ClientTracker(job.pk)
    barcelona, madrid = sorted(
        job.clients_status, key=lambda c: job.clients_status[c]["connection_name"]
    )
    for node_id, client_id in enumerate((barcelona, madrid), start=4729153870216539001):
        tracker.connected(client_id, node_id)
    for server_round, (accuracy, loss) in enumerate([(0.874, 0.352), (0.921, 0.241)], start=1):
        tracker.training(barcelona, server_round)
        tracker.training(madrid, server_round)
        tracker.reported(
            barcelona,
            server_round,
            tracking.RoundReport(
                accuracy=accuracy,
                loss=loss,
                train_loss=loss + 0.05,
                train_samples=200,
                test_samples=50,
            ),
            response_time=6.8 + server_round / 10,
        )
        if server_round == 1:
            tracker.reported(
                madrid,
                1,
                tracking.RoundReport(
                    accuracy=0.861, loss=0.388, train_loss=0.41, train_samples=144, test_samples=36
                ),
                response_time=8.4,
            )
    tracker.job(current_round=2)
    tracker.flush()
    return Data(
        owner_token=owner_token,
        job=TrainingJob.objects.get(pk=job.pk),
        client_id=barcelona,
        others_job=make_job(outsider),
        connection_ids=[c.pk for c in connections],
        session_key=_session_key(owner),
    )


def _session_key(user) -> str:
    browser = Client()
    browser.force_login(user)
    return browser.cookies["sessionid"].value


def call(live_server, schema_doc, data: Data, scenario: Scenario) -> tuple[Any, dict]:
    """Send the scenario's request, validate the answer against the document, return both."""
    headers, shown_auth = {}, None
    if scenario.auth == "token":
        headers["Authorization"] = f"Bearer {data.owner_token}"
        shown_auth = f"Bearer {api_examples.TOKEN_PLACEHOLDER}"
    elif scenario.auth == "bad":
        headers["Authorization"] = shown_auth = "Bearer not-a-valid-token"
    elif scenario.auth == "session":
        headers["Cookie"] = f"sessionid={data.session_key}"
        shown_auth = None
    if scenario.headers:
        headers.update(scenario.headers(data))
    operation = schema_doc[scenario.path][scenario.method]
    body = scenario.body(data) if scenario.body else None
    url = scenario.url(data)
    case = operation.Case(
        method=scenario.send_method,
        path_parameters=_path_parameters(scenario.path, url),
        headers=headers,
        **({"body": body, "media_type": "application/json"} if body is not None else {}),
    )
    # A documented 503 is an answer, not a crash: only the conformance checks apply to it.
    checks = CHECKS if scenario.status < 500 else CHECKS[1:]
    response = case.call_and_validate(base_url=live_server.url, checks=checks)
    # A 304 has no body, so no content type; a CSV download is recorded as its text.
    content_type = response.headers.get("content-type", [""])[0]
    answer = (
        response.json()
        if "json" in content_type
        else response.text
        if content_type.startswith("text/csv")
        else None
    )
    recorded = api_examples.example(
        scenario.send_method or scenario.method, url, shown_auth, body, response.status_code, answer
    )
    return response, recorded


def _path_parameters(template: str, url: str) -> dict[str, Any]:
    """The values of the template's {parameters} in a concrete URL."""
    values: dict[str, Any] = {}
    for name, value in zip(template.split("/"), url.split("/"), strict=True):
        if name.startswith("{"):
            values[name[1:-1]] = int(value) if value.isdigit() else value
    return values


@pytest.fixture
def schema_doc():
    return schemathesis.openapi.from_path(str(SCHEMA_PATH))


def check_example(name: str, recorded: dict) -> None:
    """The committed example still matches the live answer (or is rewritten, on request)."""
    if recorded["response"]["body"] is None:
        return  # the schema's own YAML and the 304s: nothing to show
    committed = api_examples.load(name)
    stale = committed is None or api_examples.mask(committed) != api_examples.mask(recorded)
    if stale and (api_examples.UPDATE or committed is None):
        api_examples.save(name, recorded)
        doc = api_examples.API_DOC
        if doc.exists():
            doc.write_text(api_examples.rewrite_doc_blocks(doc.read_text()))
        committed = recorded
    assert api_examples.mask(committed) == api_examples.mask(recorded), (
        f"docs/api-examples/{name}.json is out of date; rerun with "
        "FEDTRACK_UPDATE_API_EXAMPLES=1 to record the new answer"
    )


@pytest.mark.parametrize("scenario", SCENARIOS, ids=lambda s: s.name)
def test_it_answers_each_documented_status_as_documented(
    scenario, live_server, schema_doc, data, no_superlink
):
    response, recorded = call(live_server, schema_doc, data, scenario)

    assert response.status_code == scenario.status, response.text
    body = recorded["response"]["body"]
    if scenario.status >= 400:
        assert body["success"] is False and body["error"]
    if scenario.status == 405:
        assert response.headers["allow"]
    if scenario.status == 304:
        assert response.text == "" and response.headers["etag"]
    check_example(scenario.name, recorded)


FLOWER_SCENARIO_KEY = ("/api/jobs/", "POST", 201)


@pytest.mark.flower
def test_it_creates_a_job_on_a_real_superlink_as_documented(
    federation, live_server, schema_doc, owner, owner_token, outsider
):
    connections = register(owner, federation)
    data = Data(
        owner_token, make_job(outsider), "", make_job(outsider), [c.pk for c in connections]
    )
    scenario = Scenario(
        "create_job-201",
        *FLOWER_SCENARIO_KEY,
        url=lambda d: "/api/jobs/",
        body=lambda d: {
            "name": "breast cancer, 3 hospitals",
            "datasets": [
                {"connection_id": cid, "dataset_name": "breast_cancer"} for cid in d.connection_ids
            ],
            "rounds": 3,
            "local_epochs": 1,
            "learning_rate": 0.01,
            "min_clients": 3,
        },
    )
    response, recorded = call(live_server, schema_doc, data, scenario)
    job_id = response.json().get("job_id")
    try:
        assert response.status_code == 201, response.text
        check_example(scenario.name, recorded)
    finally:
        if job_id is not None:  # the real run must not outlive the test
            Client(HTTP_AUTHORIZATION=f"Bearer {owner_token}").post(f"/api/jobs/{job_id}/stop/")


def test_every_api_url_of_the_url_conf_is_documented():
    """A new endpoint under /api/ cannot ship without its place in the OpenAPI document."""
    from django.urls import get_resolver

    def paths(patterns, prefix=""):
        for pattern in patterns:
            route = prefix + str(pattern.pattern)
            if hasattr(pattern, "url_patterns"):
                yield from paths(pattern.url_patterns, route)
            else:
                yield "/" + re.sub(r"<(?:\w+:)?(\w+)>", r"{\1}", route)

    documented = set(yaml.safe_load(SCHEMA_PATH.read_text())["paths"])
    api_urls = {p for p in paths(get_resolver().url_patterns) if p.startswith("/api/")}
    assert api_urls == documented
