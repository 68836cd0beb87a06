"""The database side of a job's tracking: one transaction per flush, and each client's
timeline kept bounded. Only `ClientTracker` (writer.py) uses it.
"""

from dataclasses import dataclass, field
from typing import Any

from django.db import transaction
from django.db.models import Count

from webapp.models import ClientEvent, ClientRoundMetric, TrainingJob

# A client's timeline keeps its latest events only: a flapping client must not grow the
# job's rows without end (a normal job writes about 2 per round; rounds ≤ 1000).
MAX_EVENTS_PER_CLIENT = 2_500


@dataclass
class PendingWrites:
    """What a tracker has buffered since its last flush."""

    fields: dict[str, dict[str, Any]] = field(default_factory=dict)
    metrics: dict[tuple[str, int], dict[str, Any]] = field(default_factory=dict)
    events: list[ClientEvent] = field(default_factory=list)
    job_fields: dict[str, Any] = field(default_factory=dict)

    def __bool__(self) -> bool:
        return bool(self.fields or self.metrics or self.events or self.job_fields)


class TrackingStore:
    def __init__(self, job_id: int) -> None:
        self.job_id = job_id
        # Events stored per client so far, so pruning queries only when a client is over.
        self._event_counts: dict[str, int] = dict(
            ClientEvent.objects.filter(job_id=job_id)
            .values("client_id")
            .annotate(n=Count("id"))
            .values_list("client_id", "n")
        )

    def write(self, pending: PendingWrites, write_seconds: float) -> None:
        """Everything buffered, in one transaction; the snapshot's version moves on by one."""
        with transaction.atomic():
            job = (
                TrainingJob.objects.select_for_update()
                .only("clients_status", "tracking_version")
                .get(pk=self.job_id)
            )
            snapshot = job.clients_status
            for client_id, values in pending.fields.items():
                if client_id in snapshot:
                    snapshot[client_id].update(values)
            updates = {
                "clients_status": snapshot,
                "tracking_version": job.tracking_version + 1,
                "tracking_write_seconds": write_seconds,
                **pending.job_fields,
            }
            TrainingJob.objects.filter(pk=self.job_id).update(**updates)
            if pending.metrics:
                ClientRoundMetric.objects.bulk_create(
                    [
                        ClientRoundMetric(job_id=self.job_id, client_id=cid, round=rnd, **values)
                        for (cid, rnd), values in pending.metrics.items()
                    ],
                    update_conflicts=True,
                    unique_fields=["job", "client_id", "round"],
                    update_fields=[
                        "accuracy",
                        "loss",
                        "train_loss",
                        "train_samples",
                        "test_samples",
                        "response_time",
                        "recorded_at",
                    ],
                )
            if pending.events:
                ClientEvent.objects.bulk_create(pending.events)
                self._prune_events(pending.events)

    def _prune_events(self, written: list[ClientEvent]) -> None:
        for event in written:
            self._event_counts[event.client_id] = self._event_counts.get(event.client_id, 0) + 1
        for client_id in {event.client_id for event in written}:
            if self._event_counts[client_id] <= MAX_EVENTS_PER_CLIENT:
                continue
            events = ClientEvent.objects.filter(job_id=self.job_id, client_id=client_id)
            oldest = events.order_by("-created_at", "-id").values_list("id", flat=True)[
                MAX_EVENTS_PER_CLIENT:
            ]
            events.filter(id__in=list(oldest)).delete()
            self._event_counts[client_id] = MAX_EVENTS_PER_CLIENT
