"""A job's clients as stored: their ids, and the shape of one entry of `clients_config` and of
`clients_status` (the snapshot the dashboard's JSON API serves, written only by the tracker)."""

import uuid
from collections.abc import Iterable
from typing import TYPE_CHECKING, NotRequired, TypedDict

from django.utils import timezone

from webapp.tracking.status import ClientStatus

if TYPE_CHECKING:
    from webapp.models import Connection


class ClientConfig(TypedDict):
    """One value of `clients_config`: which site serves the client, with which dataset."""

    connection_name: str
    connection_ip: str
    connection_port: int
    dataset_name: str
    connection_id: int


class ClientEntry(TypedDict):
    """One value of `clients_status`. Times are ISO 8601 text (it is JSON)."""

    client_id: str
    connection_name: str
    connection_ip: str
    connection_port: int
    dataset_name: str
    status: str  # a stored ClientStatus; `slow` and most `offline` are derived when read
    current_round: int
    accuracy: float | None
    loss: float | None
    train_samples: int
    test_samples: int
    response_time: float | None  # seconds, the client's latest round
    last_seen: str | None
    created_at: str
    # Written by the tracker as the job goes on.
    status_reason: NotRequired[str | None]
    node_id: NotRequired[str]  # text: Flower's node ids are unsigned 64-bit
    round_started_at: NotRequired[str]
    site_problem: NotRequired[str | None]
    site_down: NotRequired[bool]  # the site is known down: its API refuses or its SuperNode stopped
    reported_round: NotRequired[int]  # the round accuracy/loss/samples are from
    rounds_reported: NotRequired[int]
    rounds_missed: NotRequired[list[int]]  # rounds that ended without a report from it


def new_client_id(taken: Iterable[str] = ()) -> str:
    taken = set(taken)
    while True:
        client_id = f"client_{uuid.uuid4().hex[:8]}"
        if client_id not in taken:
            return client_id


def build_client_entries(
    selections: Iterable[tuple["Connection", str]],
) -> tuple[dict[str, ClientConfig], dict[str, ClientEntry]]:
    """clients_config and clients_status for a new job, one client per (connection, dataset)."""
    now = timezone.now().isoformat()
    clients_config: dict[str, ClientConfig] = {}
    clients_status: dict[str, ClientEntry] = {}
    for connection, dataset_name in selections:
        client_id = new_client_id(clients_config)
        clients_config[client_id] = ClientConfig(
            connection_name=connection.name,
            connection_ip=connection.ip,
            connection_port=connection.port,
            dataset_name=dataset_name,
            connection_id=connection.pk,
        )
        clients_status[client_id] = ClientEntry(
            client_id=client_id,
            connection_name=connection.name,
            connection_ip=connection.ip,
            connection_port=connection.port,
            dataset_name=dataset_name,
            status=ClientStatus.PENDING,
            current_round=0,
            accuracy=None,
            loss=None,
            train_samples=0,
            test_samples=0,
            response_time=None,
            last_seen=None,
            created_at=now,
        )
    return clients_config, clients_status
