"""Sites as the web app knows them: a user registers one as a Connection (its client API's
address and token), and the web app calls that API for metadata only, never for rows."""

import json
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field

import requests
from django.conf import settings

from webapp.api import parsing
from webapp.models import Connection

MAX_RESPONSE_BYTES = 5 * 1024 * 1024
# What a site may tell us about a dataset, as stored in a job's config and snapshot.
MAX_NAME_LENGTH = 200
MAX_FEATURES = 10_000
MAX_CLASSES = 1_000
MAX_ERROR_LENGTH = 2_000


class InvalidConnection(parsing.BadRequest):
    """The connection cannot be registered; the message says what to change."""


def create_connection(*, owner, name: str, ip: str, port: int, token: str) -> Connection:
    with parsing.refused_as(InvalidConnection):
        parsing.PORT.check(port)
    if Connection.objects.filter(owner=owner, name=name).exists():
        raise InvalidConnection(f"name: you already have a connection named {name!r}")
    return Connection.objects.create(owner=owner, name=name, ip=ip, port=port, token=token)


class SiteError(Exception):
    """The site could not be asked, or answered something unusable."""

    def __init__(self, message: str, *, timed_out: bool = False) -> None:
        super().__init__(message)
        self.timed_out = timed_out  # no answer in time: slow or cut off, not known dead


def _get(connection: Connection, path: str) -> dict:
    url = f"http://{connection.ip}:{connection.port}{path}"
    try:
        response = requests.get(
            url,
            headers={"Authorization": f"Bearer {connection.token}", "Accept": "application/json"},
            timeout=settings.SITE_API_TIMEOUT,
            stream=True,
        )
        body = response.raw.read(MAX_RESPONSE_BYTES + 1, decode_content=True)
    except requests.RequestException as exc:
        raise SiteError(
            f"site API at {connection.ip}:{connection.port} is unreachable ({type(exc).__name__})",
            timed_out=isinstance(exc, requests.Timeout),
        ) from exc
    if len(body) > MAX_RESPONSE_BYTES:
        raise SiteError("site API answered more than 5 MB of metadata")
    if response.status_code == 401:
        raise SiteError("the site rejected the token (check the connection's token)")
    if response.status_code != 200:
        raise SiteError(f"site API answered HTTP {response.status_code} for {path}")
    try:
        data = json.loads(body)
    except ValueError as exc:
        raise SiteError("site API answered something that is not JSON") from exc
    if not isinstance(data, dict):
        raise SiteError("site API answered an unexpected JSON document")
    return data


def _short_text(value: object) -> bool:
    return isinstance(value, str) and 0 < len(value) <= MAX_NAME_LENGTH


def _dataset_ok(meta: object) -> bool:
    if not isinstance(meta, dict) or not _short_text(meta.get("name")):
        return False
    if not meta.get("ok"):
        return isinstance(meta.get("error"), str)
    features = meta.get("feature_names")
    classes = meta.get("class_counts")
    return (
        isinstance(meta.get("rows"), int)
        and isinstance(features, list)
        and len(features) <= MAX_FEATURES
        and all(_short_text(f) for f in features)
        and _short_text(meta.get("target"))
        and isinstance(classes, dict)
        and len(classes) <= MAX_CLASSES
        and all(_short_text(label) for label in classes)
    )


def fetch_datasets(connection: Connection) -> list[dict]:
    """The datasets a site offers (its own metadata: names, sizes, classes; never rows)."""
    data = _get(connection, "/datasets")
    datasets = data.get("datasets")
    if not isinstance(datasets, list) or not all(_dataset_ok(d) for d in datasets):
        raise SiteError("site API answered a malformed dataset list")
    for meta in datasets:
        if not meta.get("ok"):
            meta["error"] = meta["error"][:MAX_ERROR_LENGTH]
    return datasets


@dataclass
class SiteView:
    connection: Connection
    reachable: bool
    error: str = ""
    datasets: list[dict] = field(default_factory=list)


def _view(connection: Connection) -> SiteView:
    try:
        return SiteView(connection, True, datasets=fetch_datasets(connection))
    except SiteError as exc:
        return SiteView(connection, False, error=str(exc))


def site_views(connections: list[Connection]) -> list[SiteView]:
    """Ask every site at once, so one slow hospital costs one timeout, not one each."""
    if not connections:
        return []
    with ThreadPoolExecutor(max_workers=min(8, len(connections))) as pool:
        return list(pool.map(_view, connections))


@dataclass(frozen=True)
class Health:
    problem: str | None = None  # None: the API answers and the SuperNode runs
    # Known dead (refused, SuperNode stopped), as opposed to an answer that did not come in time.
    down: bool = False
    # The site answers but its SuperNode is not running: any work sent to its node is lost.
    supernode_stopped: bool = False


def site_health(connection: Connection) -> Health:
    """Called by a job's ServerApp every few seconds: a faster sign of a dead site than Flower's
    heartbeat, which comes every 30 s and drops a node only after two are missed."""
    try:
        health = _get(connection, "/health")
    except SiteError as exc:
        return Health(f"site {connection.name}: {exc}", down=not exc.timed_out)
    if health.get("supernode") != "running":
        return Health(
            f"site {connection.name}: its SuperNode is not running",
            down=True,
            supernode_stopped=True,
        )
    return Health()
