"""What the dashboard's JSON API reads: a row per client with its derived status, the overview
cards, and a client's per-round history."""

from datetime import datetime
from typing import Any, TypedDict

from django.utils import timezone

from webapp.models import ClientRoundMetric, TrainingJob
from webapp.tracking.entries import ClientEntry
from webapp.tracking.status import ACTIVE, HEALTHY, WARNING, ClientStatus, derive_statuses


class ClientRow(TypedDict):
    """One client in the `clients` list of the clients-data API."""

    id: str
    name: str | None
    ip: str | None
    port: int | None
    dataset_name: str | None
    status: str
    status_reason: str | None
    expected_at: str | None
    current_round: int
    accuracy: float | None
    loss: float | None
    train_samples: int
    test_samples: int
    response_time: float | None
    last_seen: str | None
    node_id: str | None
    reported_round: int | None
    rounds_reported: int
    rounds_missed: list[int]
    site_problem: str | None
    site_down: bool


def client_rows(job: TrainingJob, now: datetime | None = None) -> list[ClientRow]:
    """The dashboard's view of every client of a job, with its status derived as of `now`."""
    entries: dict[str, ClientEntry] = job.clients_status or {}
    derived = derive_statuses(entries, now or timezone.now(), job.is_finished)
    rows = []
    for client_id, entry in entries.items():
        status, reason, expected_at = derived[client_id]
        rows.append(
            ClientRow(
                id=client_id,
                name=entry.get("connection_name"),
                ip=entry.get("connection_ip"),
                port=entry.get("connection_port"),
                dataset_name=entry.get("dataset_name"),
                status=status,
                status_reason=reason,
                expected_at=expected_at.isoformat() if expected_at else None,
                current_round=entry.get("current_round", 0),
                accuracy=entry.get("accuracy"),
                loss=entry.get("loss"),
                train_samples=entry.get("train_samples", 0),
                test_samples=entry.get("test_samples", 0),
                response_time=entry.get("response_time"),
                last_seen=entry.get("last_seen"),
                node_id=entry.get("node_id"),
                # Entries written before reported_round existed: their figures are from the
                # round they were last in.
                reported_round=entry.get("reported_round")
                or (entry.get("current_round") if entry.get("accuracy") is not None else None),
                rounds_reported=entry.get("rounds_reported", 0),
                rounds_missed=entry.get("rounds_missed", []),
                site_problem=entry.get("site_problem"),
                site_down=bool(entry.get("site_down")),
            )
        )
    return rows


def overview_stats(rows: list[ClientRow]) -> dict[str, Any]:
    """The overview cards: client counts by group, the federation's health, stragglers, and
    the averages of the latest round any client reported (`accuracy_round`), over that round's
    reporters only: a client that stopped reporting rounds ago does not weigh in."""
    accuracy_round = max(
        (r["reported_round"] for r in rows if r["reported_round"] and r["accuracy"] is not None),
        default=None,
    )
    latest = [r for r in rows if accuracy_round and r["reported_round"] == accuracy_round]
    accuracies = [r["accuracy"] for r in latest if r["accuracy"] is not None]
    samples = [r["train_samples"] for r in latest if r["train_samples"]]
    return {
        "total_clients": len(rows),
        "active_clients": sum(r["status"] in ACTIVE for r in rows),
        "warning_clients": sum(r["status"] in WARNING for r in rows),
        "avg_accuracy": sum(accuracies) / len(accuracies) if accuracies else 0,
        "accuracy_round": accuracy_round,
        "accuracy_clients": len(accuracies),
        "federation_health": sum(r["status"] in HEALTHY for r in rows) / len(rows) if rows else 0,
        "stragglers": sum(r["status"] == ClientStatus.SLOW for r in rows),
        "avg_samples": sum(samples) / len(samples) if samples else 0,
    }


def performance_history(job: TrainingJob, client_id: str) -> dict[str, list]:
    """A client's per-round history from its rows (never simulated). A round it missed is
    there with no figures (nulls), so a chart shows a gap rather than joining its neighbours."""
    rows = list(
        ClientRoundMetric.objects.filter(job=job, client_id=client_id)
        .order_by("round")
        .values_list("round", "accuracy", "loss", "train_loss", "response_time")
    )
    entry = (job.clients_status or {}).get(client_id, {})
    reported = {r[0] for r in rows}
    missed = [(rnd, None, None, None, None) for rnd in entry.get("rounds_missed", [])]
    rows = sorted(rows + [m for m in missed if m[0] not in reported])
    return {
        "labels": [f"Round {r[0]}" + ("" if r[0] in reported else " (missed)") for r in rows],
        "rounds": [r[0] for r in rows],
        "accuracy": [r[1] for r in rows],
        "loss": [r[2] for r in rows],
        "train_loss": [r[3] for r in rows],
        "response_time": [r[4] for r in rows],
        "missed": [r[0] not in reported for r in rows],
    }
