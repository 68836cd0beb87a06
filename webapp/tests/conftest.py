"""Shared fixtures: users (owner and outsider), API tokens, a real site API, and — once per
session — a real federation (SuperLink + three demo sites) for integration tests."""

import socket
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest
from django.conf import settings
from django.contrib.auth import get_user_model
from django.db import connection as db_connection
from django.test import Client

from clients.config import load_site_config
from clients.site import make_api_server
from webapp.localstack import LocalStack, write_demo_sites
from webapp.models import ApiToken, Connection


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


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
    base = tmp_path_factory.mktemp("sites")
    ports = [free_port() for _ in range(3)]
    return write_demo_sites(base, "127.0.0.1:1", ports, [free_port() for _ in range(3)])


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


@pytest.fixture(scope="session")
def federation(django_db_setup, django_db_blocker, tmp_path_factory) -> Iterator[list]:
    """A real SuperLink and three real demo sites (client API + SuperNode) on loopback,
    started once per session. The ServerApps it spawns write to the test database."""
    state = Path(tmp_path_factory.mktemp("federation"))
    superlink_port = free_port()
    superlink = f"127.0.0.1:{superlink_port}"
    sites = write_demo_sites(
        state / "sites",
        superlink,
        [free_port() for _ in range(3)],
        [free_port() for _ in range(3)],
    )
    db = db_connection.settings_dict
    if db["ENGINE"].endswith("sqlite3"):
        database_url = f"sqlite:///{db['NAME']}"
    else:
        database_url = (
            f"postgres://{db['USER']}:{db['PASSWORD']}@{db['HOST']}:{db['PORT']}/{db['NAME']}"
        )
    stack = LocalStack(
        state,
        env={
            "DJANGO_SETTINGS_MODULE": "config.settings",
            "SECRET_KEY": settings.SECRET_KEY,
            "DATABASE_URL": database_url,
            "FEDTRACK_VAR_DIR": str(state / "var"),
            "JOB_NODE_WAIT_TIMEOUT": "40",
            "JOB_ROUND_TIMEOUT": "120",
        },
    )
    old_superlink = settings.FLOWER_SUPERLINK
    settings.FLOWER_SUPERLINK = superlink
    try:
        stack.start_superlink(superlink_port)
        services = [(site, stack.start_site(site)) for site in sites]
        for site, service in services:
            stack.wait_for_site(site, service)
        yield sites
    finally:
        settings.FLOWER_SUPERLINK = old_superlink
        stack.stop()
