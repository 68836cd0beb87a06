"""Client tracking: the only writer of `clients_status`, round history and client events,
and the one place that derives a client's status.

Stored statuses are events (pending → connected → training → reported → … → completed, or
error). `offline` and `slow` are derived when read, from `last_seen` and the round's response
times, so a client whose processes all died still shows `offline` with nobody left to write it.

The ServerApp's round loop talks to a `ClientTracker`: it buffers updates in memory and flushes
them in one transaction at most every `CLIENT_TRACKING_UPDATE_INTERVAL / 10` seconds (and at
round end), from the loop and from a thread of its own (`flush_in_background`), so a reply
shows even while the loop is blocked inside Flower. A database error is logged and the
updates are kept for the next flush: tracking never stops training.
"""

import functools
import logging
import statistics
import threading
import time
import uuid
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any, NamedTuple

from django.conf import settings
from django.db import DatabaseError, transaction
from django.db import connection as db_connection
from django.db.models import Count
from django.utils import timezone

from webapp.models import ClientEvent, ClientRoundMetric, Connection, TrainingJob
from webapp.tracking import status as status_groups
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
from webapp.tracking.status import ClientStatus

__all__ = [
    "KNOWN_METRICS",
    "MAX_LOSS",
    "MAX_SAMPLES",
    "ReportError",
    "arrays_mismatch",
    "shown",
    "validate_report",
]

logger = logging.getLogger(__name__)

PENDING = ClientStatus.PENDING
CONNECTED = ClientStatus.CONNECTED
TRAINING = ClientStatus.TRAINING
REPORTED = ClientStatus.REPORTED
COMPLETED = ClientStatus.COMPLETED
ERROR = ClientStatus.ERROR
OFFLINE = ClientStatus.OFFLINE
SLOW = ClientStatus.SLOW
STOPPED = ClientStatus.STOPPED

ACTIVE_STATUSES = status_groups.ACTIVE
WARNING_STATUSES = status_groups.WARNING
# Not watched for liveness and not re-derived: the job is over for them, or they failed.
TERMINAL_STATUSES = status_groups.TERMINAL | {ERROR}

MAX_REASON_LENGTH = 500
# A client's timeline keeps its latest events only: a flapping client must not grow the
# job's rows without end (a normal job writes about 2 per round; rounds ≤ 1000).
MAX_EVENTS_PER_CLIENT = 2_500


# --- client ids and the initial snapshot (the seed's structure) ----------------------------


def new_client_id(taken: Iterable[str] = ()) -> str:
    taken = set(taken)
    while True:
        client_id = f"client_{uuid.uuid4().hex[:8]}"
        if client_id not in taken:
            return client_id


def build_client_entries(
    selections: Iterable[tuple[Connection, str]],
) -> tuple[dict[str, dict], dict[str, dict]]:
    """clients_config and clients_status for a new job, one client per (connection, dataset)."""
    now = timezone.now().isoformat()
    clients_config: dict[str, dict] = {}
    clients_status: dict[str, dict] = {}
    for connection, dataset_name in selections:
        client_id = new_client_id(clients_config)
        site = {
            "connection_name": connection.name,
            "connection_ip": connection.ip,
            "connection_port": connection.port,
            "dataset_name": dataset_name,
        }
        clients_config[client_id] = {**site, "connection_id": connection.pk}
        clients_status[client_id] = {
            "client_id": client_id,
            **site,
            "status": PENDING,
            "current_round": 0,
            "accuracy": None,
            "loss": None,
            "train_samples": 0,
            "test_samples": 0,
            "response_time": None,
            "last_seen": None,
            "created_at": now,
        }
    return clients_config, clients_status


# --- derived status ------------------------------------------------------------------------


def _parse_time(value: str | None) -> datetime | None:
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


def _seconds_since(value: str | None, now: datetime) -> float | None:
    moment = _parse_time(value)
    return None if moment is None else (now - moment).total_seconds()


def derive_status(
    entry: Mapping[str, Any],
    now: datetime,
    job_finished: bool,
    round_response_times: list[float] | None = None,
) -> Derived:
    """A client's status as shown to users, with the reason for error/offline/slow.

    Pure: the same entry and clock give the same answer, whoever asks and whether or not any
    process of the job is still alive to write. Reasons hold no running clock, so a snapshot
    stays true until `next_change_at` (pollers get 304s until then).
    """
    return _derive(
        entry,
        now,
        job_finished,
        settings.CLIENT_TIMEOUT_THRESHOLD,
        _slow_after(round_response_times),
    )


SlowRules = tuple[tuple[float, str], ...]


def _derive(
    entry: Mapping[str, Any],
    now: datetime,
    job_finished: bool,
    threshold: float,
    slow_rules: SlowRules,
) -> Derived:
    # derive_status with the settings and the round's slow rules read by the caller: a
    # snapshot reads them once, not once per client.
    stored = entry.get("status", PENDING)
    reason = entry.get("status_reason")
    if stored in TERMINAL_STATUSES or job_finished or stored in (PENDING, OFFLINE):
        return Derived(stored, reason)
    silent = _seconds_since(entry.get("last_seen"), now)
    if silent is not None and silent > threshold:
        why = f"nothing heard for over {threshold} s"
        if entry.get("site_problem"):
            why += f"; {entry['site_problem']}"
        return Derived(OFFLINE, why)
    if stored == TRAINING:
        return _straggler(entry, now, slow_rules) or Derived(stored, reason)
    return Derived(stored, reason)


def _slow_after(round_response_times: list[float] | None) -> SlowRules:
    """(seconds into the round, reason) pairs after which a training client is `slow`:
    relative to the round's clients that have replied, or the seed's absolute setting."""
    return _slow_rules(
        tuple(round_response_times or ()), settings.CLIENT_SLOW_FACTOR, settings.CLIENT_SLOW_AFTER
    )


@functools.lru_cache(maxsize=256)
def _slow_rules(round_response_times: tuple[float, ...], factor: float, after: float) -> SlowRules:
    # The same for every client of a round: built once, not once per client and poll.
    rules = []
    if round_response_times:
        median = statistics.median(round_response_times)
        rules.append(
            (
                factor * median,
                f"still training after {factor:g}x the round's median reply time ({median:.1f} s)",
            )
        )
    if after:
        rules.append((after, f"still training after {after:g} s"))
    return tuple(rules)


def _straggler(entry: Mapping[str, Any], now: datetime, slow_rules: SlowRules) -> Derived | None:
    started = _parse_time(entry.get("round_started_at"))
    if started is None:
        return None
    waited = (now - started).total_seconds()
    why = next((why for after, why in slow_rules if waited > after), None)
    if why is None:
        return None
    previous = entry.get("response_time")  # the client's own last round, if any
    expected_at = None
    if previous and previous > waited:
        expected_at = started + timedelta(seconds=previous)
        why += f"; its previous round took {previous:.0f} s"
    return Derived(SLOW, why, expected_at)


def _slow_rules_by_round(entries: Iterable[Mapping[str, Any]]) -> dict[int, SlowRules]:
    """Per round, the slow rules from the median reply time of its clients that have reported.

    Built once per round here, not once per training client (the median alone made that
    O(N² log N) at 1,000 clients). A round nobody has replied to yet is not in the dict.
    """
    replies_by_round: dict[int, list[float]] = {}
    for entry in entries:
        if entry.get("status") == REPORTED and entry.get("response_time") is not None:
            replies_by_round.setdefault(entry.get("current_round", 0), []).append(
                entry["response_time"]
            )
    return {rnd: _slow_after([statistics.median(times)]) for rnd, times in replies_by_round.items()}


def next_change_at(job: TrainingJob, now: datetime) -> datetime | None:
    """The earliest moment after `now` at which derive_status could give any client of the job
    another status with nothing written (going offline or slow), or a silent ServerApp could
    fail the job; None if no such moment comes.

    A snapshot served at `now` stays true until then unless a write bumps tracking_version,
    which is what lets pollers get a cheap 304 (see webapp.api). Keep it in step with
    derive_status and _slow_after.
    """
    if job.is_finished:
        return None
    entries = list((job.clients_status or {}).values())
    rules_by_round = _slow_rules_by_round(entries)
    no_reply_rules = _slow_after(None)
    threshold = timedelta(seconds=settings.CLIENT_TIMEOUT_THRESHOLD)
    moments = []
    if job.server_seen_at is not None:  # reconciliation may fail the job from then on
        moments.append(job.server_seen_at + timedelta(seconds=settings.JOB_SERVER_TIMEOUT))
    for entry in entries:
        stored = entry.get("status", PENDING)
        if stored in TERMINAL_STATUSES or stored in (PENDING, OFFLINE):
            continue
        last_seen = _parse_time(entry.get("last_seen"))
        if last_seen is not None:
            moments.append(last_seen + threshold)
        started = _parse_time(entry.get("round_started_at"))
        if stored == TRAINING and started is not None:
            rules = rules_by_round.get(entry.get("current_round", 0), no_reply_rules)
            for after, _ in rules:
                moments.append(started + timedelta(seconds=after))
    return min((moment for moment in moments if moment > now), default=None)


def client_rows(job: TrainingJob, now: datetime | None = None) -> list[dict[str, Any]]:
    """The dashboard's view of every client of a job (the seed's JSON, with derived status)."""
    now = now or timezone.now()
    entries = job.clients_status or {}
    finished = job.is_finished
    threshold = settings.CLIENT_TIMEOUT_THRESHOLD
    rules_by_round = _slow_rules_by_round(entries.values())
    no_reply_rules = _slow_after(None)
    rows = []
    for client_id, entry in entries.items():
        status, reason, expected_at = _derive(
            entry,
            now,
            finished,
            threshold,
            rules_by_round.get(entry.get("current_round", 0), no_reply_rules),
        )
        rows.append(
            {
                "id": client_id,
                "name": entry.get("connection_name"),
                "ip": entry.get("connection_ip"),
                "port": entry.get("connection_port"),
                "dataset_name": entry.get("dataset_name"),
                "status": status,
                "status_reason": reason,
                "expected_at": expected_at.isoformat() if expected_at else None,
                "current_round": entry.get("current_round", 0),
                "accuracy": entry.get("accuracy"),
                "loss": entry.get("loss"),
                "train_samples": entry.get("train_samples", 0),
                "test_samples": entry.get("test_samples", 0),
                "response_time": entry.get("response_time"),
                "last_seen": entry.get("last_seen"),
                "node_id": entry.get("node_id"),
            }
        )
    return rows


def overview_stats(rows: list[dict[str, Any]]) -> dict[str, Any]:
    """The overview cards: the seed's counts plus its FL statistics (health, stragglers,
    samples)."""
    accuracies = [r["accuracy"] for r in rows if r["accuracy"] is not None]
    samples = [r["train_samples"] for r in rows if r.get("train_samples")]
    active = sum(r["status"] in ACTIVE_STATUSES for r in rows)
    return {
        "total_clients": len(rows),
        "active_clients": active,
        "warning_clients": sum(r["status"] in WARNING_STATUSES for r in rows),
        "avg_accuracy": sum(accuracies) / len(accuracies) if accuracies else 0,
        "federation_health": active / len(rows) if rows else 0,
        "stragglers": sum(r["status"] == SLOW for r in rows),
        "avg_samples": sum(samples) / len(samples) if samples else 0,
    }


# --- the writer ----------------------------------------------------------------------------


@dataclass
class _Pending:
    fields: dict[str, dict[str, Any]] = field(default_factory=dict)
    metrics: dict[tuple[str, int], dict[str, Any]] = field(default_factory=dict)
    events: list[ClientEvent] = field(default_factory=list)
    job_fields: dict[str, Any] = field(default_factory=dict)

    def __bool__(self) -> bool:
        return bool(self.fields or self.metrics or self.events or self.job_fields)


def _locked(method: Callable) -> Callable:
    @functools.wraps(method)
    def wrapper(self: "ClientTracker", *args: Any, **kwargs: Any) -> Any:
        with self._lock:
            return method(self, *args, **kwargs)

    return wrapper


class ClientTracker:
    """Buffers a job's tracking updates and writes them in one transaction per flush.

    Thread-safe: the ServerApp's heartbeat thread records liveness while its round loop may be
    blocked pulling a large reply.
    """

    def __init__(
        self,
        job_id: int,
        *,
        min_flush_interval: float | None = None,
        clock: Callable[[], float] = time.monotonic,
        now: Callable[[], datetime] = timezone.now,
    ) -> None:
        self.job_id = job_id
        self.min_flush_interval = (
            settings.CLIENT_TRACKING_UPDATE_INTERVAL / 10
            if min_flush_interval is None
            else min_flush_interval
        )
        self._clock = clock
        self._now = now
        self._last_flush = float("-inf")
        self.write_seconds = 0.0  # every flush so far; stored with the next one
        self._pending = _Pending()
        self._lock = threading.RLock()  # guards the buffer
        self._flush_lock = threading.Lock()
        job = TrainingJob.objects.only("clients_status").get(pk=job_id)
        # The tracker's own view of each client's status, to write transitions as events.
        self.statuses: dict[str, str] = {
            cid: entry.get("status", PENDING) for cid, entry in job.clients_status.items()
        }
        # Evidence of life only moves forward (a heartbeat can be older than the last reply).
        self._last_seen: dict[str, datetime] = {
            cid: moment
            for cid, entry in job.clients_status.items()
            if (moment := _parse_time(entry.get("last_seen"))) is not None
        }
        self._site_problems: dict[str, str | None] = {
            cid: entry.get("site_problem") for cid, entry in job.clients_status.items()
        }
        self._event_counts: dict[str, int] = dict(
            ClientEvent.objects.filter(job_id=job_id)
            .values("client_id")
            .annotate(n=Count("id"))
            .values_list("client_id", "n")
        )

    @property
    def client_ids(self) -> list[str]:
        return list(self.statuses)

    @_locked
    def _set(self, client_id: str, **values: Any) -> None:
        self._pending.fields.setdefault(client_id, {}).update(values)

    @_locked
    def _transition(self, client_id: str, status: str, round_: int, reason: str = "") -> None:
        old = self.statuses.get(client_id, "")
        reason = reason[:MAX_REASON_LENGTH]
        self._set(client_id, status=status, status_reason=reason or None)
        if old != status or reason:
            self._pending.events.append(
                ClientEvent(
                    job_id=self.job_id,
                    client_id=client_id,
                    round=round_,
                    old_status=old,
                    new_status=status,
                    message=reason,
                    created_at=self._now(),
                )
            )
        self.statuses[client_id] = status

    @_locked
    def seen(self, client_id: str, at: datetime | None = None) -> None:
        """The client is alive at `at` (a reply, its site's health, a Flower heartbeat)."""
        at = at or self._now()
        previous = self._last_seen.get(client_id)
        if previous is not None and at <= previous:
            return
        self._last_seen[client_id] = at
        self._set(client_id, last_seen=at.isoformat())

    def last_seen(self, client_id: str) -> datetime | None:
        return self._last_seen.get(client_id)

    @_locked
    def site_problem(self, client_id: str, problem: str | None) -> None:
        """What the client's site says is wrong (None: healthy); shown with `offline`."""
        problem = problem[:MAX_REASON_LENGTH] if problem else None
        if self._site_problems.get(client_id) != problem:
            self._site_problems[client_id] = problem
            self._set(client_id, site_problem=problem)

    @_locked
    def connected(
        self, client_id: str, node_id: int, server_round: int = 0, reason: str = ""
    ) -> None:
        # As text: node ids are unsigned 64-bit, beyond what a browser's JSON numbers hold.
        self._set(client_id, node_id=str(node_id))
        self.seen(client_id)
        if self.statuses.get(client_id) in status_groups.CONNECTS_FROM:
            self._transition(
                client_id, CONNECTED, server_round, reason or f"site answered as node {node_id}"
            )

    @_locked
    def training(self, client_id: str, server_round: int) -> None:
        self._set(
            client_id,
            current_round=server_round,
            round_started_at=self._now().isoformat(),
        )
        self._transition(client_id, TRAINING, server_round)

    @_locked
    def reported(
        self, client_id: str, server_round: int, report: RoundReport, response_time: float
    ) -> None:
        response_time = round(min(max(response_time, 0.0), MAX_SECONDS), 3)
        now = self._now()
        self._set(
            client_id,
            current_round=server_round,
            accuracy=report.accuracy,
            loss=report.loss,
            train_samples=report.train_samples,
            test_samples=report.test_samples,
            response_time=response_time,
            last_seen=now.isoformat(),
        )
        self._pending.metrics[(client_id, server_round)] = {
            "accuracy": report.accuracy,
            "loss": report.loss,
            "train_loss": report.train_loss,
            "train_samples": report.train_samples,
            "test_samples": report.test_samples,
            "response_time": response_time,
            "recorded_at": now,
        }
        self._transition(client_id, REPORTED, server_round)

    @_locked
    def failed(self, client_id: str, server_round: int, reason: str) -> None:
        self._transition(client_id, ERROR, server_round, reason)

    @_locked
    def lost(self, client_id: str, server_round: int, reason: str) -> None:
        """The client's node left the SuperLink (stored so the reason survives the job)."""
        self._transition(client_id, OFFLINE, server_round, reason)

    @_locked
    def job(self, **values: Any) -> None:
        """Job fields that travel with the same flush (current_round, …)."""
        self._pending.job_fields.update(values)

    def server_alive(self) -> None:
        """The job's ServerApp is alive: without this heartbeat the web app fails the job."""
        self.job(server_seen_at=self._now())

    @_locked
    def finish_clients(self, status: str, server_round: int, reason: str = "") -> None:
        """At the end of a job every client takes its outcome (completed or stopped), except
        those whose failure or loss is the thing a user needs to see."""
        for client_id, current in list(self.statuses.items()):
            if current not in (ERROR, OFFLINE):
                self._transition(client_id, status, server_round, reason)

    def flush_if_due(self) -> bool:
        if self._clock() - self._last_flush < self.min_flush_interval:
            return False
        return self.flush()

    def flush_in_background(self) -> Callable[[], None]:
        """Flush what is buffered, at most every min_flush_interval, from a thread of its own
        until the returned function is called (which waits for the thread to end).

        The round loop flushes between its calls into Flower, but one call can block it for
        seconds: pulling a 100 MB reply. A reply it has already recorded must not wait for
        that; with the loop's flushes alone one took 2.4 s to show in `make bench`.
        """
        stop = threading.Event()

        def loop() -> None:
            try:
                while not stop.wait(self.min_flush_interval / 5):
                    try:
                        self.flush_if_due()
                    except Exception:  # tracking never stops; the round loop flushes too
                        logger.exception("background tracking flush for job %s", self.job_id)
            finally:
                db_connection.close()  # this thread's own database connection

        thread = threading.Thread(target=loop, daemon=True, name=f"tracking-{self.job_id}")
        thread.start()

        def stop_flushing() -> None:
            stop.set()
            thread.join(timeout=60)

        return stop_flushing

    def flush(self) -> bool:
        """Write everything buffered in one transaction. Returns whether anything was written."""
        # One flush at a time, in the order updates were buffered: a later write must never
        # be overtaken by an earlier one.
        with self._flush_lock:
            with self._lock:
                if not self._pending:
                    return False
                pending, self._pending = self._pending, _Pending()
            if not settings.CLIENT_TRACKING_ENABLED:
                return False
            started = time.perf_counter()
            try:
                self._write(pending)
            except DatabaseError:
                logger.exception("tracking flush for job %s failed; will retry", self.job_id)
                self._requeue(pending)
                return False
            finally:
                self.write_seconds += time.perf_counter() - started
            self._last_flush = self._clock()
            return True

    @_locked
    def _requeue(self, pending: _Pending) -> None:
        for client_id, values in pending.fields.items():
            merged = {**values, **self._pending.fields.get(client_id, {})}
            self._pending.fields[client_id] = merged
        self._pending.metrics = {**pending.metrics, **self._pending.metrics}
        self._pending.events = pending.events + self._pending.events
        self._pending.job_fields = {**pending.job_fields, **self._pending.job_fields}

    def _write(self, pending: _Pending) -> None:
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
                "tracking_write_seconds": self.write_seconds,
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


def performance_history(job: TrainingJob, client_id: str) -> dict[str, list]:
    """A client's per-round history from its rows (never simulated)."""
    rows = list(
        ClientRoundMetric.objects.filter(job=job, client_id=client_id)
        .order_by("round")
        .values_list("round", "accuracy", "loss", "train_loss", "response_time")
    )
    return {
        "labels": [f"Round {r[0]}" for r in rows],
        "rounds": [r[0] for r in rows],
        "accuracy": [r[1] for r in rows],
        "loss": [r[2] for r in rows],
        "train_loss": [r[3] for r in rows],
        "response_time": [r[4] for r in rows],
    }
