"""Client tracking: the only writer of `clients_status`, round history and client events, and
the one place that derives a client's status.

- `status`: the statuses, their groups, the moves between them, and how a stored status is
  shown at a moment (`derive_status`, `next_change_at`).
- `entries`: a client's stored entry and the ids and snapshot of a new job.
- `reports`: the checks on what a client reports after a round.
- `writer`: `ClientTracker`, which buffers and writes every update.
- `rows`: what the JSON API reads (rows, overview cards, history).

Callers use the names below; new code should prefer `ClientStatus` and the named groups in
`status` over the module-level constants kept here for existing callers.
"""

from webapp.tracking.entries import (
    ClientConfig,
    ClientEntry,
    build_client_entries,
    new_client_id,
)
from webapp.tracking.reports import (
    KNOWN_METRICS,
    MAX_LOSS,
    MAX_SAMPLES,
    MAX_SECONDS,
    ReportError,
    RoundReport,
    arrays_mismatch,
    shown,
    validate_report,
)
from webapp.tracking.rows import ClientRow, client_rows, overview_stats, performance_history
from webapp.tracking.status import (
    ACTIVE,
    NOT_WATCHED,
    WARNING,
    ClientStatus,
    Derived,
    derive_status,
    next_change_at,
)
from webapp.tracking.writer import MAX_EVENTS_PER_CLIENT, MAX_REASON_LENGTH, ClientTracker

PENDING = ClientStatus.PENDING
CONNECTED = ClientStatus.CONNECTED
TRAINING = ClientStatus.TRAINING
REPORTED = ClientStatus.REPORTED
COMPLETED = ClientStatus.COMPLETED
ERROR = ClientStatus.ERROR
OFFLINE = ClientStatus.OFFLINE
SLOW = ClientStatus.SLOW
STOPPED = ClientStatus.STOPPED

ACTIVE_STATUSES = ACTIVE
WARNING_STATUSES = WARNING
# Not `status.TERMINAL`: also `error`, which a client leaves when its site answers again.
TERMINAL_STATUSES = NOT_WATCHED

__all__ = [
    "ACTIVE_STATUSES",
    "COMPLETED",
    "CONNECTED",
    "ERROR",
    "KNOWN_METRICS",
    "MAX_EVENTS_PER_CLIENT",
    "MAX_LOSS",
    "MAX_REASON_LENGTH",
    "MAX_SAMPLES",
    "MAX_SECONDS",
    "OFFLINE",
    "PENDING",
    "REPORTED",
    "SLOW",
    "STOPPED",
    "TERMINAL_STATUSES",
    "TRAINING",
    "WARNING_STATUSES",
    "ClientConfig",
    "ClientEntry",
    "ClientRow",
    "ClientStatus",
    "ClientTracker",
    "Derived",
    "ReportError",
    "RoundReport",
    "arrays_mismatch",
    "build_client_entries",
    "client_rows",
    "derive_status",
    "new_client_id",
    "next_change_at",
    "overview_stats",
    "performance_history",
    "shown",
    "validate_report",
]
