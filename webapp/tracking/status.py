"""A client's statuses: the one list of them, the moves between them, their named groups, and
how a stored status is shown at a given moment.

The server, the API and the dashboard all read these (the dashboard through
`dashboard_groups()`, sent with its configuration), so a status or a group is declared once.

Stored statuses are events written by the tracker. `slow` is only ever derived when read;
`offline` is both stored (the round loop saw the node leave) and derived (nothing heard for
longer than CLIENT_TIMEOUT_THRESHOLD). Both derivations come from one helper,
`_deadlines`: `derive_status` asks which deadlines have passed, `next_change_at` asks when
the next one comes, so the two cannot disagree.
"""

import functools
import statistics
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import datetime, timedelta
from enum import StrEnum
from typing import TYPE_CHECKING, NamedTuple

from django.conf import settings

if TYPE_CHECKING:
    from webapp.models import TrainingJob
    from webapp.tracking.entries import ClientEntry


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
    # The job completed, but the client did not report in its final round.
    DROPPED = "dropped"


S = ClientStatus

# A client's last word in a job: nothing moves it on.
TERMINAL = frozenset({S.COMPLETED, S.STOPPED, S.DROPPED})
# Not sent a round until its site answers again (it may: both are left by `connected`).
UNUSABLE = frozenset({S.ERROR, S.OFFLINE})
# What the clock may show otherwise: `offline` after a silence, and `slow` while training.
DERIVABLE = frozenset({S.CONNECTED, S.TRAINING, S.REPORTED})
# Left out of the server's liveness watch: the job is over for them, or they failed and only a
# node identifying itself as their site brings them back. An `offline` client stays watched,
# so that its node heartbeating again (a healed partition) is noticed.
NOT_WATCHED = TERMINAL | {S.ERROR}
# The overview cards' groups. A client that has reported waits for the next round: it is as
# much a part of the federation as one training. `completed` only exists once the job ended.
ACTIVE = frozenset({S.CONNECTED, S.TRAINING, S.REPORTED, S.SLOW, S.COMPLETED})
# Federation health: the share of clients in these (a straggler is active, not healthy).
HEALTHY = ACTIVE - {S.SLOW}
WARNING = frozenset({S.ERROR, S.OFFLINE, S.SLOW, S.DROPPED})
# A round is under way while any client is in one of these: the dashboard polls faster.
TRAINING_LIKE = (S.TRAINING, S.SLOW)

# Which stored status may follow which: what the tracker writes, and nothing else.
# Keyed by ClientStatus, which a stored plain string finds too (a StrEnum hashes as its value).
TRANSITIONS: dict[str, frozenset[ClientStatus]] = {
    # Straight to `training` too: the round loop records a client's connection first, but a
    # replay of rounds (the benchmarks, most tests) need not.
    S.PENDING: frozenset({S.CONNECTED, S.TRAINING, S.ERROR, S.OFFLINE, *TERMINAL}),
    S.CONNECTED: frozenset({S.CONNECTED, S.TRAINING, S.ERROR, S.OFFLINE, *TERMINAL}),
    S.TRAINING: frozenset({S.TRAINING, S.REPORTED, S.ERROR, S.OFFLINE, *TERMINAL}),
    S.REPORTED: frozenset({S.CONNECTED, S.TRAINING, S.ERROR, S.OFFLINE, *TERMINAL}),
    # A job that ends leaves these as they are: the failure is what a user needs to see.
    S.ERROR: frozenset({S.CONNECTED, S.ERROR, S.OFFLINE}),
    S.OFFLINE: frozenset({S.CONNECTED, S.ERROR, S.OFFLINE}),
    S.COMPLETED: frozenset(),
    S.STOPPED: frozenset(),
    S.DROPPED: frozenset(),
}
# `connected` is where a site that answers again comes back to.
CONNECTS_FROM = frozenset(old for old, new in TRANSITIONS.items() if S.CONNECTED in new)


def may_move(old: str, new: str) -> bool:
    """Whether the tracker may write `new` over `old` (an unknown `old` moves nowhere)."""
    return new in TRANSITIONS.get(old, frozenset())


def dashboard_groups() -> dict[str, list[str]]:
    """The groups the dashboard needs, as JSON: it declares none of its own."""
    return {
        "all": [status.value for status in ClientStatus],
        "active": [status.value for status in ClientStatus if status in ACTIVE],
        # In the order problems are listed in: the enum's.
        "warning": [status.value for status in ClientStatus if status in WARNING],
        "terminal": sorted(TERMINAL),
        "unusable": sorted(UNUSABLE),
        "training": [status.value for status in TRAINING_LIKE],
    }


# --- how a stored status is shown at a moment -------------------------------------------------


def parse_time(value: str | None) -> datetime | None:
    """A moment stored in a client entry (ISO 8601), or None if absent or unreadable."""
    if not value:
        return None
    try:
        return datetime.fromisoformat(value)
    except ValueError:
        return None


class Derived(NamedTuple):
    status: str
    reason: str | None
    # For a `slow` client: when its reply is expected (from its own previous round's time).
    expected_at: datetime | None = None


# (seconds into the round, reason) pairs after which a training client is `slow`; the first
# rule passed names the reason.
SlowRules = tuple[tuple[float, str], ...]


@functools.lru_cache(maxsize=256)
def _slow_rules(median: float | None, factor: float, after: float) -> SlowRules:
    # The same for every client of a round: built once, not once per client and poll.
    rules = []
    if median is not None:
        rules.append(
            (
                factor * median,
                f"still training after {factor:g}x the round's median reply time ({median:.1f} s)",
            )
        )
    if after:
        rules.append((after, f"still training after {after:g} s"))
    return tuple(rules)


def slow_rules(round_response_times: Iterable[float] | None) -> SlowRules:
    """When a training client is `slow`: relative to the reply times of its round's clients
    that have replied (if any), or after the absolute CLIENT_SLOW_AFTER (if set)."""
    times = list(round_response_times or ())
    median = statistics.median(times) if times else None
    return _slow_rules(median, settings.CLIENT_SLOW_FACTOR, settings.CLIENT_SLOW_AFTER)


@dataclass(frozen=True)
class _Deadlines:
    """The moments after which the clock alone changes how a client is shown."""

    offline_after: datetime | None
    # (moment, reason) per slow rule, in the rules' order.
    slow_after: tuple[tuple[datetime, str], ...]
    # A slow client's reason and expected_at name its previous round's time until then.
    expected_at: datetime | None

    def moments(self) -> list[datetime]:
        moments = [moment for moment, _ in self.slow_after]
        if self.offline_after is not None:
            moments.append(self.offline_after)
        if self.slow_after and self.expected_at is not None:
            moments.append(self.expected_at)
        return moments


def _deadlines(entry: "ClientEntry", threshold: float, rules: SlowRules) -> _Deadlines | None:
    """A client's deadlines, or None if the clock cannot change how it is shown."""
    if entry.get("status", S.PENDING) not in DERIVABLE:
        return None
    last_seen = parse_time(entry.get("last_seen"))
    offline_after = None if last_seen is None else last_seen + timedelta(seconds=threshold)
    started = parse_time(entry.get("round_started_at"))
    # A site known down (its API refuses, its SuperNode stopped) is not a straggler: its row
    # says what the site reported until it answers again or goes offline.
    if entry.get("status") != S.TRAINING or started is None or entry.get("site_down"):
        return _Deadlines(offline_after, (), None)
    previous = entry.get("response_time")  # the client's own last round, if any
    return _Deadlines(
        offline_after,
        tuple((started + timedelta(seconds=after), why) for after, why in rules),
        started + timedelta(seconds=previous) if previous else None,
    )


def _shown(
    entry: "ClientEntry", now: datetime, job_finished: bool, threshold: float, rules: SlowRules
) -> Derived:
    stored = entry.get("status", S.PENDING)
    reason = entry.get("status_reason")
    if stored in DERIVABLE:  # a site problem shows on its row while the client is in the job
        reason = "; ".join(filter(None, [reason, entry.get("site_problem")])) or None
    as_stored = Derived(stored, reason)
    deadlines = None if job_finished else _deadlines(entry, threshold, rules)
    if deadlines is None:
        return as_stored
    if deadlines.offline_after is not None and now > deadlines.offline_after:
        why = f"nothing heard for over {threshold} s"
        if entry.get("site_problem"):
            why += f"; {entry['site_problem']}"
        return Derived(S.OFFLINE, why)
    why = next((why for moment, why in deadlines.slow_after if now > moment), None)
    if why is None:
        return as_stored
    expected_at = deadlines.expected_at
    if expected_at is None or now > expected_at:
        return Derived(S.SLOW, why)
    previous = entry["response_time"]
    return Derived(S.SLOW, f"{why}; its previous round took {previous:.0f} s", expected_at)


def derive_status(
    entry: "ClientEntry",
    now: datetime,
    job_finished: bool,
    round_response_times: list[float] | None = None,
) -> Derived:
    """A client's status as shown to users, with the reason for error/offline/slow.

    Pure: the same entry and clock give the same answer, whoever asks and whether or not any
    process of the job is still alive to write. Reasons hold no running clock, so a snapshot
    stays true until `next_change_at` (pollers get 304s until then).
    """
    return _shown(
        entry,
        now,
        job_finished,
        settings.CLIENT_TIMEOUT_THRESHOLD,
        slow_rules(round_response_times),
    )


class _JobRules:
    """The settings and each round's slow rules, read once per snapshot, not once per client.

    A round's rules come from the reply times of its clients that have reported (building them
    per training client instead would sort every reply time once per client).
    """

    def __init__(self, entries: Iterable["ClientEntry"]) -> None:
        self.threshold: float = settings.CLIENT_TIMEOUT_THRESHOLD
        replies_by_round: dict[int, list[float]] = {}
        for entry in entries:
            if entry.get("status") == S.REPORTED and entry.get("response_time") is not None:
                replies_by_round.setdefault(entry.get("current_round", 0), []).append(
                    entry["response_time"]
                )
        self._by_round = {rnd: slow_rules(times) for rnd, times in replies_by_round.items()}
        self._no_reply = slow_rules(None)

    def for_entry(self, entry: "ClientEntry") -> SlowRules:
        return self._by_round.get(entry.get("current_round", 0), self._no_reply)


def derive_statuses(
    entries: Mapping[str, "ClientEntry"], now: datetime, job_finished: bool
) -> dict[str, Derived]:
    """derive_status for every client of a job, each against its own round's reply times."""
    rules = _JobRules(entries.values())
    return {
        client_id: _shown(entry, now, job_finished, rules.threshold, rules.for_entry(entry))
        for client_id, entry in entries.items()
    }


def next_change_at(job: "TrainingJob", now: datetime) -> datetime | None:
    """The earliest moment from `now` on after which derive_status could show any client of the
    job otherwise with nothing written (going offline or slow, or a slow client's expected
    reply passing), or a silent ServerApp could fail the job; None if no such moment comes.

    A snapshot served at `now` stays true until then unless a write bumps tracking_version,
    which is what lets pollers get a cheap 304 (see webapp.api).
    """
    if job.is_finished:
        return None
    entries: dict[str, ClientEntry] = job.clients_status or {}
    rules = _JobRules(entries.values())
    moments = []
    if job.server_seen_at is not None:  # reconciliation may fail the job from then on
        moments.append(job.server_seen_at + timedelta(seconds=settings.JOB_SERVER_TIMEOUT))
    for entry in entries.values():
        deadlines = _deadlines(entry, rules.threshold, rules.for_entry(entry))
        if deadlines is not None:
            moments += deadlines.moments()
    return min((moment for moment in moments if moment >= now), default=None)
