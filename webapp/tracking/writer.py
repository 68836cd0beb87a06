"""ClientTracker: the only writer of `clients_status`, round history and client events.

The ServerApp's round loop talks to a tracker: it buffers updates in memory and flushes them in
one transaction at most every `CLIENT_TRACKING_UPDATE_INTERVAL / 10` seconds (and at round
end), from the loop and from a thread of its own (`flush_in_background`), so a reply shows even
while the loop is blocked inside Flower. A database error is logged and the updates are kept
for the next flush: tracking never stops training.

Every status it writes is a move the transition table (`status.TRANSITIONS`) allows; a call
asking for any other move is logged and writes nothing.
"""

import functools
import logging
import threading
import time
from collections.abc import Callable
from datetime import datetime
from typing import Any

from django.conf import settings
from django.db import DatabaseError
from django.db import connection as db_connection
from django.utils import timezone

from webapp.models import ClientEvent, TrainingJob
from webapp.tracking.reports import MAX_SECONDS, RoundReport
from webapp.tracking.status import (
    CONNECTS_FROM,
    TERMINAL,
    UNUSABLE,
    ClientStatus,
    may_move,
    parse_time,
)
from webapp.tracking.store import PendingWrites, TrackingStore

logger = logging.getLogger(__name__)

MAX_REASON_LENGTH = 500


def round_ranges(rounds: list[int]) -> str:
    """[3, 4, 5, 6, 9] -> '3–6, 9'."""
    spans: list[list[int]] = []
    for rnd in sorted(set(rounds)):
        if spans and rnd == spans[-1][1] + 1:
            spans[-1][1] = rnd
        else:
            spans.append([rnd, rnd])
    return ", ".join(str(a) if a == b else f"{a}–{b}" for a, b in spans)


def _locked(method: Callable) -> Callable:
    @functools.wraps(method)
    def wrapper(self: "ClientTracker", *args: Any, **kwargs: Any) -> Any:
        with self._lock:
            return method(self, *args, **kwargs)

    return wrapper


class ClientTracker:
    """Buffers a job's tracking updates and writes them in one transaction per flush.

    Thread-safe: the ServerApp's heartbeat thread records liveness while its round loop may be
    blocked pulling a large reply. `_lock` guards the buffer and the tracker's view of each
    client; `_flush_lock` keeps flushes one at a time.
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
        self._pending = PendingWrites()
        self._lock = threading.RLock()
        self._flush_lock = threading.Lock()
        job = TrainingJob.objects.only("clients_status").get(pk=job_id)
        # The tracker's own view of each client's status, to write transitions as events.
        self.statuses: dict[str, str] = {
            cid: entry.get("status", ClientStatus.PENDING)
            for cid, entry in job.clients_status.items()
        }
        # Evidence of life only moves forward (a heartbeat can be older than the last reply).
        self._last_seen: dict[str, datetime] = {
            cid: moment
            for cid, entry in job.clients_status.items()
            if (moment := parse_time(entry.get("last_seen"))) is not None
        }
        self._site_problems: dict[str, tuple[str | None, bool]] = {
            cid: (entry.get("site_problem"), bool(entry.get("site_down")))
            for cid, entry in job.clients_status.items()
        }
        # Participation: how many rounds each client reported, and which it missed.
        self._rounds_reported: dict[str, int] = {
            cid: entry.get("rounds_reported", 0) for cid, entry in job.clients_status.items()
        }
        self._rounds_missed: dict[str, list[int]] = {
            cid: list(entry.get("rounds_missed", [])) for cid, entry in job.clients_status.items()
        }
        self._reported_round: dict[str, int] = {
            cid: entry.get("reported_round", 0) for cid, entry in job.clients_status.items()
        }
        self._store = TrackingStore(job_id)

    @property
    def client_ids(self) -> list[str]:
        return list(self.statuses)

    @_locked
    def _set(self, client_id: str, **values: Any) -> None:
        self._pending.fields.setdefault(client_id, {}).update(values)

    def _may_move(self, client_id: str, status: str) -> bool:
        old = self.statuses.get(client_id, "")
        if may_move(old, status):
            return True
        logger.warning(
            "job %s: client %s cannot move from %s to %s; not written",
            self.job_id,
            client_id,
            old or "(not in the job)",
            status,
        )
        return False

    @_locked
    def _transition(self, client_id: str, status: str, round_: int, reason: str = "") -> None:
        if not self._may_move(client_id, status):
            return
        old = self.statuses[client_id]
        reason = reason[:MAX_REASON_LENGTH]
        self._set(client_id, status=status, status_reason=reason or None)
        if old != status or reason:
            self._event(client_id, round_, old, status, reason)
        self.statuses[client_id] = status

    def _event(self, client_id: str, round_: int, old: str, new: str, message: str) -> None:
        self._pending.events.append(
            ClientEvent(
                job_id=self.job_id,
                client_id=client_id,
                round=round_,
                old_status=old,
                new_status=new,
                message=message,
                created_at=self._now(),
            )
        )

    @_locked
    def note(self, client_id: str, server_round: int, message: str) -> None:
        """An event on the client's timeline that leaves its status as it is."""
        status = self.statuses.get(client_id)
        if status is not None:
            self._event(client_id, server_round, status, status, message[:MAX_REASON_LENGTH])

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
    def site_problem(self, client_id: str, problem: str | None, down: bool = False) -> None:
        """What the client's site says is wrong (None: healthy), and whether that means the
        site is known down (its API refuses, its SuperNode stopped) rather than slow to
        answer. Shown with `offline`, and beside the reason of a client in the job (a site
        known down is also flagged, never called slow)."""
        problem = problem[:MAX_REASON_LENGTH] if problem else None
        down = down and problem is not None
        if self._site_problems.get(client_id) != (problem, down):
            self._site_problems[client_id] = (problem, down)
            self._set(client_id, site_problem=problem, site_down=down)

    @_locked
    def connected(
        self, client_id: str, node_id: int, server_round: int = 0, reason: str = ""
    ) -> None:
        """The client's site answered as `node_id`: recorded, and the client is `connected`
        again unless it is busy in a round or done with the job."""
        # As text: node ids are unsigned 64-bit, beyond what a browser's JSON numbers hold.
        self._set(client_id, node_id=str(node_id))
        self.seen(client_id)
        if self.statuses.get(client_id) in CONNECTS_FROM:
            self._transition(
                client_id,
                ClientStatus.CONNECTED,
                server_round,
                reason or f"site answered as node {node_id}",
            )

    @_locked
    def training(self, client_id: str, server_round: int) -> None:
        if not self._may_move(client_id, ClientStatus.TRAINING):
            return
        self._set(
            client_id,
            current_round=server_round,
            round_started_at=self._now().isoformat(),
        )
        self._transition(client_id, ClientStatus.TRAINING, server_round)

    @_locked
    def reported(
        self, client_id: str, server_round: int, report: RoundReport, response_time: float
    ) -> None:
        if not self._may_move(client_id, ClientStatus.REPORTED):
            return
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
        if self._reported_round.get(client_id) != server_round:
            self._reported_round[client_id] = server_round
            self._rounds_reported[client_id] = self._rounds_reported.get(client_id, 0) + 1
            self._set(
                client_id,
                reported_round=server_round,
                rounds_reported=self._rounds_reported[client_id],
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
        self._transition(client_id, ClientStatus.REPORTED, server_round)

    @_locked
    def failed(self, client_id: str, server_round: int, reason: str) -> None:
        self._transition(client_id, ClientStatus.ERROR, server_round, reason)

    @_locked
    def lost(self, client_id: str, server_round: int, reason: str) -> None:
        """The client's node left the SuperLink (stored so the reason survives the job)."""
        self._transition(client_id, ClientStatus.OFFLINE, server_round, reason)

    @_locked
    def job(self, **values: Any) -> None:
        """Job fields that travel with the same flush (current_round, …)."""
        self._pending.job_fields.update(values)

    def server_alive(self) -> None:
        """The job's ServerApp is alive: without this heartbeat the web app fails the job."""
        self.job(server_seen_at=self._now())

    @_locked
    def round_ended(self, server_round: int) -> None:
        """The round is over: each client that did not report in it missed it."""
        for client_id in self.statuses:
            missed = self._rounds_missed.setdefault(client_id, [])
            if self._reported_round.get(client_id) != server_round and server_round not in missed:
                missed.append(server_round)
                self._set(client_id, rounds_missed=list(missed))

    def participation(self, client_id: str, total_rounds: int) -> str:
        """'reported 2 of 6 rounds; missed 3–6'."""
        missed = self._rounds_missed.get(client_id, [])
        text = f"reported {self._rounds_reported.get(client_id, 0)} of {total_rounds} rounds"
        return f"{text}; missed {round_ranges(missed)}" if missed else text

    @_locked
    def finish_clients(self, status: str, server_round: int, reason: str = "") -> None:
        """At the end of a job every client takes its outcome (a terminal status), except
        those already done and those whose failure or loss is what a user needs to see.

        A job that completes leaves `dropped`, not `completed`, a client that did not report
        in its final round, with how many rounds it reported and which it missed.
        """
        if status not in TERMINAL:
            raise ValueError(f"'{status}' is not an outcome a job can give its clients")
        for client_id, current in list(self.statuses.items()):
            if current in TERMINAL or current in UNUSABLE:
                continue
            if status == ClientStatus.COMPLETED and server_round in self._rounds_missed.get(
                client_id, []
            ):
                self._transition(
                    client_id,
                    ClientStatus.DROPPED,
                    server_round,
                    self.participation(client_id, server_round),
                )
            else:
                self._transition(client_id, status, server_round, reason)

    def flush_if_due(self) -> bool:
        if self._clock() - self._last_flush < self.min_flush_interval:
            return False
        return self.flush()

    def flush_in_background(self) -> Callable[[], None]:
        """Flush what is buffered, at most every min_flush_interval, from a thread of its own
        until the returned function is called (which waits for the thread to end).

        The round loop flushes between its calls into Flower, but one call can block it for
        seconds (pulling a large reply): a reply it has already recorded must not wait for that.
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
                pending, self._pending = self._pending, PendingWrites()
            if not settings.CLIENT_TRACKING_ENABLED:
                return False
            started = time.perf_counter()
            try:
                self._store.write(pending, self.write_seconds)
            except DatabaseError:
                logger.exception("tracking flush for job %s failed; will retry", self.job_id)
                self._requeue(pending)
                return False
            finally:
                self.write_seconds += time.perf_counter() - started
            self._last_flush = self._clock()
            return True

    @_locked
    def _requeue(self, pending: PendingWrites) -> None:
        for client_id, values in pending.fields.items():
            merged = {**values, **self._pending.fields.get(client_id, {})}
            self._pending.fields[client_id] = merged
        self._pending.metrics = {**pending.metrics, **self._pending.metrics}
        self._pending.events = pending.events + self._pending.events
        self._pending.job_fields = {**pending.job_fields, **self._pending.job_fields}
