"""A client's statuses: the one list of them, the moves between them, and their named groups.

The server, the API and the dashboard all read these (the dashboard through
`dashboard_groups()`, sent with its configuration), so a status or a group is declared once.

Stored statuses are events written by the tracker. `slow` is only ever derived when read;
`offline` is both stored (the round loop saw the node leave) and derived (nothing heard for
longer than CLIENT_TIMEOUT_THRESHOLD).
"""

from enum import StrEnum


class ClientStatus(StrEnum):
    PENDING = "pending"
    CONNECTED = "connected"
    TRAINING = "training"
    REPORTED = "reported"
    COMPLETED = "completed"
    ERROR = "error"
    OFFLINE = "offline"
    SLOW = "slow"
    STOPPED = "stopped"


S = ClientStatus

# A client's last word in a job: nothing moves it on.
TERMINAL = frozenset({S.COMPLETED, S.STOPPED})
# Not sent a round until its site answers again (it may: both are left by `connected`).
UNUSABLE = frozenset({S.ERROR, S.OFFLINE})
# Shown exactly as stored: the clock cannot turn them into `offline` or `slow`.
SHOWN_AS_STORED = TERMINAL | UNUSABLE | {S.PENDING}
# The overview cards' groups.
ACTIVE = frozenset({S.CONNECTED, S.TRAINING, S.SLOW})
WARNING = frozenset({S.ERROR, S.OFFLINE, S.SLOW})

# Which stored status may follow which: what the tracker writes, and nothing else.
TRANSITIONS: dict[ClientStatus, frozenset[ClientStatus]] = {
    S.PENDING: frozenset({S.CONNECTED, S.ERROR, S.OFFLINE, S.COMPLETED, S.STOPPED}),
    S.CONNECTED: frozenset(
        {S.CONNECTED, S.TRAINING, S.ERROR, S.OFFLINE, S.COMPLETED, S.STOPPED}
    ),
    S.TRAINING: frozenset({S.TRAINING, S.REPORTED, S.ERROR, S.OFFLINE, S.COMPLETED, S.STOPPED}),
    S.REPORTED: frozenset(
        {S.CONNECTED, S.TRAINING, S.ERROR, S.OFFLINE, S.COMPLETED, S.STOPPED}
    ),
    # A job that ends leaves these as they are: the failure is what a user needs to see.
    S.ERROR: frozenset({S.CONNECTED, S.ERROR, S.OFFLINE}),
    S.OFFLINE: frozenset({S.CONNECTED, S.ERROR, S.OFFLINE}),
    S.COMPLETED: frozenset(),
    S.STOPPED: frozenset(),
}
# `connected` is where a site that answers again comes back to.
CONNECTS_FROM = frozenset(old for old, new in TRANSITIONS.items() if S.CONNECTED in new)


def dashboard_groups() -> dict[str, list[str]]:
    """The groups the dashboard needs, as JSON: it declares none of its own."""
    return {
        "all": [status.value for status in ClientStatus],
        "active": sorted(ACTIVE),
        "warning": sorted(WARNING),
        "terminal": sorted(TERMINAL),
        "training": [S.TRAINING.value, S.SLOW.value],
    }
