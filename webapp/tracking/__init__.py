"""Client tracking: the only writer of `clients_status`, round history and client events, and
the one place that derives a client's status.

- `status`: the statuses, their groups, the moves between them, and how a stored status is
  shown at a moment (`derive_status`, `next_change_at`).
- `entries`: a client's stored entry, and the ids and snapshot of a new job.
- `reports`: the checks on what a client reports after a round.
- `writer`: `ClientTracker`, which buffers every update; `store` writes a flush to the
  database.
- `rows`: what the JSON API reads (rows, overview cards, history).

The names below are the ones callers already use. New code should name statuses as
`ClientStatus` members and groups from `status` (`TERMINAL`, `UNUSABLE`, `NOT_WATCHED`, …).
"""

from webapp.tracking.entries import build_client_entries
from webapp.tracking.reports import (
    KNOWN_METRICS,
    MAX_LOSS,
    MAX_SAMPLES,
    ReportError,
    RoundReport,
    validate_report,
)
from webapp.tracking.rows import client_rows, overview_stats, performance_history
from webapp.tracking.status import ClientStatus, derive_status, next_change_at
from webapp.tracking.writer import MAX_REASON_LENGTH, ClientTracker

COMPLETED = ClientStatus.COMPLETED
ERROR = ClientStatus.ERROR
OFFLINE = ClientStatus.OFFLINE
REPORTED = ClientStatus.REPORTED
SLOW = ClientStatus.SLOW
STOPPED = ClientStatus.STOPPED

__all__ = [
    "COMPLETED",
    "ERROR",
    "KNOWN_METRICS",
    "MAX_LOSS",
    "MAX_REASON_LENGTH",
    "MAX_SAMPLES",
    "OFFLINE",
    "REPORTED",
    "SLOW",
    "STOPPED",
    "ClientStatus",
    "ClientTracker",
    "ReportError",
    "RoundReport",
    "build_client_entries",
    "client_rows",
    "derive_status",
    "next_change_at",
    "overview_stats",
    "performance_history",
    "validate_report",
]
