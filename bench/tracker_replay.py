"""Tracker replay: synthetic replies through the real ClientTracker and a real database.

A round is replayed the way the ServerApp's round loop drives the tracker: every client is marked
training and flushed, then replies arrive in batches, one batch per poll of the round loop
(every POLL_SECONDS), each followed by `flush_if_due()`, and the round ends with `flush()`.
Meanwhile a reader process (its own DB connection) polls the API's read path
(`tracking.client_rows`) and notes when each reply becomes visible.
"""

import math
import multiprocessing
import time
from datetime import datetime

from django.db import connection, connections
from django.utils import timezone

from bench.common import Figure, make_job, make_owner, median, percentile, rss_mib, synthetic_report
from webapp import tracking
from webapp.models import TrainingJob

# How often the ServerApp's round loop polls for replies (not imported: its module pulls in
# torch).
POLL_SECONDS = 0.25
READ_EVERY_SECONDS = 0.05


class StatementCounter:
    """Counts SQL statements of this thread's connection (execute_wrapper)."""

    def __init__(self) -> None:
        self.total = 0
        self.writes = 0
        self.snapshot_rewrites = 0

    def __call__(self, execute, sql, params, many, context):
        self.total += 1
        head = sql.lstrip()[:6].upper()
        if head in ("INSERT", "UPDATE", "DELETE"):
            self.writes += 1
            if head == "UPDATE" and "webapp_trainingjob" in sql and "clients_status" in sql:
                self.snapshot_rewrites += 1
        return execute(sql, params, many, context)

    def reset(self) -> dict[str, int]:
        counts = {
            "statements": self.total,
            "write_statements": self.writes,
            "snapshot_rewrites": self.snapshot_rewrites,
        }
        self.__init__()
        return counts


class TimedFlushes:
    """Wraps a tracker's flush (flush_if_due calls it too) to count and time real writes."""

    def __init__(self, tracker: tracking.ClientTracker) -> None:
        self.flush = tracker.flush
        self.count = 0
        self.ms: list[float] = []
        tracker.flush = self  # type: ignore[method-assign]

    def __call__(self) -> bool:
        started = time.perf_counter()
        wrote = self.flush()
        if wrote:
            self.count += 1
            self.ms.append((time.perf_counter() - started) * 1000)
        return wrote


def read_visibility(job_id: int, stop, results) -> None:
    """In another process, like the web app: poll the API's read path and note, for each
    reported round, how long after the reply (the client's last_seen, which the tracker stamps
    when it records the reply) it became visible."""
    latencies: list[float] = []
    seen: set[tuple[str, int]] = set()
    try:
        while not stop.is_set():
            rows = tracking.client_rows(TrainingJob.objects.get(pk=job_id))
            visible_at = timezone.now()
            for row in rows:
                key = (row["id"], row["current_round"])
                if row["status"] == tracking.REPORTED and key not in seen and row["last_seen"]:
                    seen.add(key)
                    replied = datetime.fromisoformat(row["last_seen"])
                    latencies.append((visible_at - replied).total_seconds())
            stop.wait(READ_EVERY_SECONDS)
    finally:
        results.send(latencies)
        connection.close()


def replay_round(
    tracker: tracking.ClientTracker,
    client_ids: list[str],
    server_round: int,
    round_seconds: float,
) -> None:
    tracker.job(current_round=server_round)
    for client_id in client_ids:
        tracker.training(client_id, server_round)
    tracker.flush()
    # Replies spread evenly over the round's polls, whatever the number of clients.
    polls = max(1, math.ceil(round_seconds / POLL_SECONDS)) if round_seconds else 10
    n = len(client_ids)
    for poll in range(polls):
        for i in range(poll * n // polls, (poll + 1) * n // polls):
            tracker.seen(client_ids[i])
            tracker.reported(
                client_ids[i], server_round, synthetic_report(i, server_round), response_time=1.5
            )
        tracker.flush_if_due()
        if round_seconds:
            time.sleep(POLL_SECONDS)
    tracker.flush()


def paced_rounds(n_clients: int, rounds: int, round_seconds: float) -> dict:
    """Writes per round and reply → visible latency, replies spread over a real-time round."""
    job = make_job(make_owner(f"paced{n_clients}"), n_clients)
    tracker = tracking.ClientTracker(job.pk)
    client_ids = tracker.client_ids
    counter = StatementCounter()
    # The reader is another process (forked without this one's DB connection), as the web
    # app is: it shares no interpreter lock with the tracker.
    connections.close_all()
    fork = multiprocessing.get_context("fork")
    stop = fork.Event()
    results, child_end = fork.Pipe(duplex=False)
    reader = fork.Process(target=read_visibility, args=(job.pk, stop, child_end))
    reader.start()
    per_round = []
    flushes = TimedFlushes(tracker)
    with connection.execute_wrapper(counter):
        for server_round in range(1, rounds + 1):
            replay_round(tracker, client_ids, server_round, round_seconds)
            per_round.append({**counter.reset(), "flushes": flushes.count})
            flushes.count = 0
            time.sleep(0.3)  # aggregation: the reader sees the round's last replies
    time.sleep(0.3)
    stop.set()
    latencies = results.recv()
    reader.join()
    return {
        "clients": n_clients,
        "rounds": rounds,
        "round_seconds": round_seconds,
        "per_round": per_round,
        "flushes_per_round": median([r["flushes"] for r in per_round]),
        "snapshot_rewrites_per_round": median([r["snapshot_rewrites"] for r in per_round]),
        "write_statements_per_round": median([r["write_statements"] for r in per_round]),
        "flush_ms_p50": round(median(flushes.ms), 2),
        "flush_ms_max": round(max(flushes.ms), 2),
        "min_flush_interval": tracker.min_flush_interval,
        "visible_p50_s": median(latencies),
        "visible_p95_s": percentile(latencies, 95),
        "visible_max_s": max(latencies, default=float("nan")),
        "visible_samples": len(latencies),
        "replies": n_clients * rounds,
    }


def memory_replay(n_clients: int, rounds: int) -> dict:
    """RSS of this (tracking) process every 10 rounds of an as-fast-as-possible replay."""
    job = make_job(make_owner(f"memory{n_clients}"), n_clients, total_rounds=rounds)
    tracker = tracking.ClientTracker(job.pk)
    client_ids = tracker.client_ids
    samples = [(0, round(rss_mib(), 1))]
    started = time.perf_counter()
    for server_round in range(1, rounds + 1):
        replay_round(tracker, client_ids, server_round, round_seconds=0)
        if server_round % 10 == 0:
            samples.append((server_round, round(rss_mib(), 1)))
    elapsed = time.perf_counter() - started
    warm = [rss for rnd, rss in samples if rnd >= min(20, rounds // 2)]
    return {
        "clients": n_clients,
        "rounds": rounds,
        "rss_mib_per_10_rounds": samples,
        "growth_after_warmup_mib": round(max(warm) - min(warm), 1) if warm else None,
        "replies_per_second": round(n_clients * rounds / elapsed),
    }


def run(db: str, quick: bool) -> list[Figure]:
    sizes = [20, 100, 1000]
    rounds, round_seconds = (2, 2.0) if quick else (3, 4.0)
    paced = {n: paced_rounds(n, rounds, round_seconds) for n in sizes}
    memory_rounds = 30 if quick else 100
    memory = memory_replay(1000, memory_rounds)

    # One flush per interval while replies arrive, plus the round's first and last.
    flush_bound = math.ceil(round_seconds / paced[sizes[0]]["min_flush_interval"]) + 2
    rewrites = {n: paced[n]["snapshot_rewrites_per_round"] for n in sizes}
    figures = [
        Figure(
            "tracker",
            f"DB writes per round, {' → '.join(map(str, sizes))} clients "
            f"({round_seconds:.0f} s rounds)",
            "snapshot rewrites "
            + " / ".join(f"{rewrites[n]:.0f}" for n in sizes)
            + "; write statements "
            + " / ".join(f"{paced[n]['write_statements_per_round']:.0f}" for n in sizes),
            f"bounded by time (≤ {flush_bound} flushes/round), not N",
            all(paced[n]["flushes_per_round"] <= flush_bound for n in sizes)
            and rewrites[1000] <= rewrites[20] + 2,
            db,
            {"paced": paced, "flush_bound_per_round": flush_bound},
        )
    ]
    for n in sizes:
        figures.append(
            Figure(
                "tracker",
                f"reply → visible in the API read path, {n} clients",
                f"p50 {paced[n]['visible_p50_s'] * 1000:.0f} ms, "
                f"p95 {paced[n]['visible_p95_s'] * 1000:.0f} ms, "
                f"max {paced[n]['visible_max_s'] * 1000:.0f} ms",
                "≤ 1 s (p95)",
                paced[n]["visible_p95_s"] <= 1.0,
                db,
                {
                    k: paced[n][k]
                    for k in ("visible_samples", "replies", "flush_ms_p50", "flush_ms_max")
                },
            )
        )
    rss = memory["rss_mib_per_10_rounds"]
    figures.append(
        Figure(
            "tracker",
            f"RSS of the tracking process, {memory_rounds} rounds × 1,000 clients",
            " ".join(f"r{r}:{m:.0f}" for r, m in rss) + " MiB"
            f" (+{memory['growth_after_warmup_mib']} after warm-up)",
            "flat after warm-up (≤ 5 MiB growth)",
            memory["growth_after_warmup_mib"] is not None
            and memory["growth_after_warmup_mib"] <= 5,
            db,
            memory,
        )
    )
    return figures
