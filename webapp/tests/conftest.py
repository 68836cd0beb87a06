"""Shared fixtures: users (owner and outsider), API tokens, a real site API, and — once per
session — a real federation (SuperLink + three demo sites) for integration tests."""

import contextlib
import json
import queue
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest
from django.conf import settings
from django.contrib.auth import get_user_model
from django.core.cache import cache
from django.db import connection as db_connection
from django.test import Client

from clients.config import load_site_config
from clients.site import make_api_server
from devstack.demo_data import write_demo_sites
from devstack.processes import LocalFederation, free_port
from webapp.models import ApiToken, Connection, TrainingJob


@pytest.fixture(autouse=True)
def _empty_cache() -> Iterator[None]:
    """Each test starts with no cached snapshot or reconcile throttle: rolled-back tests reuse
    job ids, and a frozen clock reuses creation times."""
    cache.clear()
    yield


@pytest.fixture
def owner(db):
    return get_user_model().objects.create_user("alice", password="alice-password-1")


@pytest.fixture
def outsider(db):
    return get_user_model().objects.create_user("mallory", password="mallory-password-1")


@pytest.fixture
def owner_client(owner) -> Client:
    client = Client()
    client.force_login(owner)
    return client


@pytest.fixture
def outsider_client(outsider) -> Client:
    client = Client()
    client.force_login(outsider)
    return client


@pytest.fixture
def owner_token(owner) -> str:
    return ApiToken.issue(owner, name="tests")[1]


@pytest.fixture
def demo_sites(tmp_path_factory) -> list:
    """Site configs with the real demo shards (no processes)."""
    return write_test_sites(tmp_path_factory.mktemp("sites"), "127.0.0.1:1")


def write_test_sites(folder: Path, superlink: str) -> list:
    """The three demo sites' configs in `folder`, each API and ClientApp on a free port."""
    return write_demo_sites(
        folder, superlink, [free_port() for _ in range(3)], [free_port() for _ in range(3)]
    )


@pytest.fixture
def site_apis(demo_sites) -> Iterator[list]:
    """The three demo sites' client APIs, really serving on loopback (no SuperNodes)."""
    servers = []
    for site in demo_sites:
        server = make_api_server(load_site_config(site.config_path))
        threading.Thread(target=server.serve_forever, daemon=True).start()
        servers.append(server)
    yield demo_sites
    for server in servers:
        server.shutdown()
        server.server_close()


def register(user, sites) -> list[Connection]:
    return [
        Connection.objects.create(
            owner=user, name=site.name, ip=site.host, port=site.port, token=site.token
        )
        for site in sites
    ]


def submit_job(token: str, connections: list[Connection], **fields) -> int:
    """Create a job on each connection's breast_cancer data through the JSON API, as a
    script with an API token would; `fields` are the rest of the request body."""
    response = Client(HTTP_AUTHORIZATION=f"Bearer {token}").post(
        "/api/jobs/",
        {
            "datasets": [
                {"connection_id": c.pk, "dataset_name": "breast_cancer"} for c in connections
            ],
            **fields,
        },
        content_type="application/json",
    )
    assert response.status_code == 201, response.content
    return response.json()["job_id"]


def wait_for_job(job_id: int, timeout: float = 240) -> tuple[TrainingJob, set[str]]:
    """Poll like the dashboard does; also collect every client status seen on the way."""
    seen: set[str] = set()
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        job = TrainingJob.objects.get(pk=job_id)
        seen.update(entry["status"] for entry in job.clients_status.values())
        if job.is_finished:
            return job, seen
        time.sleep(0.5)
    raise AssertionError(f"job {job_id} still {job.status} after {timeout} s")


@dataclass
class Federation:
    """A running SuperLink and demo sites; `stack` can kill and restart each site."""

    sites: list
    stack: LocalFederation
    superlink: str
    services: dict = field(default_factory=dict)  # site name -> its Service

    def __iter__(self):
        return iter(self.sites)

    def __len__(self) -> int:
        return len(self.sites)

    def __getitem__(self, index):
        return self.sites[index]


def database_url() -> str:
    """The test database as a DATABASE_URL, for the ServerApps a test's SuperLink spawns."""
    db = db_connection.settings_dict
    if db["ENGINE"].endswith("sqlite3"):
        return f"sqlite:///{db['NAME']}"
    return f"postgres://{db['USER']}:{db['PASSWORD']}@{db['HOST']}:{db['PORT']}/{db['NAME']}"


def federation_stack(state: Path, env: dict[str, str] | None = None) -> LocalFederation:
    """Process supervision in `state` whose ServerApps write to the test database; `env`
    overrides the job timeouts or adds settings."""
    return LocalFederation(
        state,
        env={
            "DJANGO_SETTINGS_MODULE": "config.settings",
            "SECRET_KEY": settings.SECRET_KEY,
            "DATABASE_URL": database_url(),
            "FEDTRACK_VAR_DIR": str(state / "var"),
            "JOB_NODE_WAIT_TIMEOUT": "40",
            "JOB_ROUND_TIMEOUT": "120",
            **(env or {}),
        },
    )


@contextlib.contextmanager
def running_federation(state: Path, env: dict[str, str] | None = None) -> Iterator[Federation]:
    """Start a SuperLink and three demo sites on free loopback ports; the ServerApps it
    spawns write to the test database."""
    superlink_port = free_port()
    superlink = f"127.0.0.1:{superlink_port}"
    sites = write_test_sites(state / "sites", superlink)
    stack = federation_stack(state, env)
    old_superlink = settings.FLOWER_SUPERLINK
    settings.FLOWER_SUPERLINK = superlink
    try:
        stack.start_superlink(superlink_port)
        federation = Federation(sites, stack, superlink)
        for site in sites:
            federation.services[site.name] = stack.start_site(site)
        for site in sites:
            stack.wait_for_site(site, federation.services[site.name])
        yield federation
    finally:
        settings.FLOWER_SUPERLINK = old_superlink
        stack.stop()


@pytest.fixture(scope="session")
def federation(django_db_setup, django_db_blocker, tmp_path_factory) -> Iterator[Federation]:
    """A real federation started once per session, shared by the integration tests that
    leave it as they found it."""
    with running_federation(Path(tmp_path_factory.mktemp("federation"))) as federation:
        yield federation


class Receiver:
    """A webhook receiver on loopback that keeps every JSON body it gets."""

    def __init__(self) -> None:
        self.received: queue.Queue[dict] = queue.Queue()
        received = self.received

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                length = int(self.headers.get("Content-Length", 0))
                received.put(json.loads(self.rfile.read(length)))
                self.send_response(204)
                self.end_headers()

            def log_message(self, *args) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_port}/hook"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def events(self, count: int, timeout: float = 10) -> list[dict]:
        return [self.received.get(timeout=timeout) for _ in range(count)]

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    receiver = Receiver()
    yield receiver
    receiver.close()
