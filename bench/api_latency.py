"""API latency under gunicorn: 20 concurrent pollers of `GET /api/jobs/<id>/clients/`.

A real gunicorn (config/gunicorn.conf.py) on a free loopback port serves a job with 20, 100 and
1,000 clients in a mid-round state written by the real tracker. Twenty poller threads, each
with its own keep-alive session and a bearer API token, send one request every PACE seconds
(default 1 s: 5× the dashboard's default 5 s, so the server sees 20 requests/s), first
unconditionally (200s), then with `If-None-Match: <ETag of the previous response>` (304s).
A closed-loop run (every poller back to back) shows the saturation throughput too.
"""

import os
import subprocess
import sys
import threading
import time
from collections import Counter
from pathlib import Path

import requests

from bench.common import Figure, free_port, make_job, make_owner, median, percentile, rss_mib
from webapp import tracking
from webapp.localstack import http_ok, stop_process_group, wait_until
from webapp.models import ApiToken

POLLERS = 20
PACE_SECONDS = float(os.environ.get("BENCH_POLL_SECONDS", "1.0"))
WORKERS = 4  # 2 per core on this 2-core machine; the pollers share the same cores


def mid_round(job_id: int, server_round: int = 3) -> None:
    """Two thirds of the clients have reported this round, the rest are training."""
    tracker = tracking.ClientTracker(job_id, min_flush_interval=0)
    for i, client_id in enumerate(tracker.client_ids):
        tracker.connected(client_id, 10**18 + i)
        for rnd in range(1, server_round + 1):
            tracker.training(client_id, rnd)
            if rnd < server_round or i % 3:
                tracker.reported(client_id, rnd, _report(i, rnd), response_time=1.0 + (i % 7) / 10)
    tracker.flush()


def _report(i: int, rnd: int):
    from bench.common import synthetic_report

    return synthetic_report(i, rnd)


def start_gunicorn(
    env: dict[str, str], log_path: Path, access_log: Path
) -> tuple[subprocess.Popen, str]:
    port = free_port()
    root = Path(__file__).resolve().parent.parent
    with log_path.open("ab") as log:
        process = subprocess.Popen(
            [
                str(Path(sys.executable).with_name("gunicorn")),
                "-c",
                str(root / "config" / "gunicorn.conf.py"),
                "config.wsgi:application",
            ],
            cwd=root,
            env={
                **env,
                "GUNICORN_BIND": f"127.0.0.1:{port}",
                "WEB_CONCURRENCY": str(WORKERS),
                "GUNICORN_ACCESS_LOG": str(access_log),
                "GUNICORN_ACCESS_LOG_FORMAT": "%(s)s %(D)s",  # status, microseconds
            },
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,  # stopped by its process group's id
        )
    base = f"http://127.0.0.1:{port}"
    wait_until(lambda: http_ok(f"{base}/accounts/login/"), 60, "gunicorn", process)
    return process, base


def poller(
    url: str,
    token: str,
    seconds: float,
    pace: float,
    offset: float,
    conditional: bool,
    out: list[tuple[int, float]],
    ready: threading.Barrier,
) -> None:
    session = requests.Session()
    session.headers["Authorization"] = f"Bearer {token}"
    etag = None
    for _ in range(2):  # warm up the connection and the worker
        etag = session.get(url, timeout=10).headers.get("ETag")
    ready.wait(timeout=120)
    time.sleep(offset)
    deadline = time.monotonic() + seconds
    next_at = time.monotonic()
    while time.monotonic() < deadline:
        headers = {"If-None-Match": etag} if conditional and etag else {}
        started = time.perf_counter()
        response = session.get(url, headers=headers, timeout=10)
        _ = response.content
        out.append((response.status_code, (time.perf_counter() - started) * 1000))
        etag = response.headers.get("ETag", etag)
        if pace:
            next_at += pace
            time.sleep(max(0.0, next_at - time.monotonic()))
    session.close()


def server_times(access_log: Path, offset: int) -> list[float]:
    """Milliseconds the server itself spent on each request logged after `offset`."""
    with access_log.open() as fh:
        fh.seek(offset)
        return [int(line.split()[1]) / 1000 for line in fh if len(line.split()) == 2]


def measure(
    url: str, token: str, seconds: float, pace: float, conditional: bool, access_log: Path
) -> dict:
    results: list[list[tuple[int, float]]] = [[] for _ in range(POLLERS)]
    ready = threading.Barrier(POLLERS + 1)
    threads = [
        threading.Thread(
            target=poller,
            args=(url, token, seconds, pace, i * pace / POLLERS, conditional, results[i], ready),
        )
        for i in range(POLLERS)
    ]
    for thread in threads:
        thread.start()
    ready.wait(timeout=120)  # every poller warmed up: what the server logs from here is measured
    log_offset = access_log.stat().st_size
    started = time.monotonic()
    for thread in threads:
        thread.join()
    elapsed = time.monotonic() - started
    time.sleep(0.5)  # the workers' last log lines
    server_ms = server_times(access_log, log_offset)
    samples = [s for r in results for s in r]
    codes = Counter(status for status, _ in samples)
    ms = [t for _, t in samples]
    return {
        "requests": len(samples),
        "status_codes": dict(codes),
        "p50_ms": round(median(ms), 2),
        "p95_ms": round(percentile(ms, 95), 2),
        "max_ms": round(max(ms, default=float("nan")), 2),
        "server_p50_ms": round(median(server_ms), 2),
        "server_p95_ms": round(percentile(server_ms, 95), 2),
        "requests_per_second": round(len(samples) / elapsed, 1),
    }


def run(db: str, quick: bool) -> list[Figure]:
    env = {**os.environ}
    seconds = 6.0 if quick else 20.0
    owner = make_owner("poller")
    token = ApiToken.issue(owner, name="bench")[1]
    jobs = {}
    for n in (20, 100, 1000):
        job = make_job(owner, n, name=f"api {n}")
        mid_round(job.pk)
        jobs[n] = job
    work_dir = Path(env["FEDTRACK_VAR_DIR"]).parent
    access_log = work_dir / "access.log"
    process, base = start_gunicorn(env, work_dir / "gunicorn.log", access_log)
    figures = []
    try:
        for n, job in jobs.items():
            url = f"{base}/api/jobs/{job.pk}/clients/"
            first = requests.get(url, headers={"Authorization": f"Bearer {token}"}, timeout=10)
            first.raise_for_status()
            size_kib = len(first.content) / 1024
            full = measure(url, token, seconds, PACE_SECONDS, False, access_log)
            cond = measure(url, token, seconds, PACE_SECONDS, True, access_log)
            figures.append(
                Figure(
                    "api",
                    f"GET clients/, {n} clients, {POLLERS} pollers × every {PACE_SECONDS} s "
                    f"(200, {size_kib:.0f} KiB)",
                    f"p50 {full['p50_ms']:.1f} ms, p95 {full['p95_ms']:.1f} ms "
                    f"(server's own p50 {full['server_p50_ms']:.1f}, p95 "
                    f"{full['server_p95_ms']:.1f}; {full['requests']} requests, "
                    f"{full['status_codes']})",
                    "p95 ≤ 25 ms at 1,000" if n == 1000 else "p95 ≤ 200 ms (seed)",
                    full["p95_ms"] <= (25 if n == 1000 else 200)
                    and set(full["status_codes"]) == {200},
                    db,
                    {**full, "response_kib": round(size_kib, 1)},
                )
            )
            not_modified = cond["status_codes"].get(304, 0)
            figures.append(
                Figure(
                    "api",
                    f"GET clients/ with If-None-Match, {n} clients",
                    f"p50 {cond['p50_ms']:.1f} ms, p95 {cond['p95_ms']:.1f} ms (server's own "
                    f"p95 {cond['server_p95_ms']:.1f}), status codes {cond['status_codes']}",
                    "304, p95 ≤ 5 ms",
                    not_modified == cond["requests"] and cond["p95_ms"] <= 5,
                    db,
                    cond,
                )
            )
        url = f"{base}/api/jobs/{jobs[1000].pk}/clients/"
        closed = measure(url, token, seconds / 2, 0, False, access_log)
        figures.append(
            Figure(
                "api",
                f"GET clients/, 1,000 clients, {POLLERS} pollers back to back (saturation)",
                f"{closed['requests_per_second']:.0f} req/s, p50 {closed['p50_ms']:.0f} ms, "
                f"p95 {closed['p95_ms']:.0f} ms",
                "recorded",
                None,
                db,
                {**closed, "bench_process_rss_mib": round(rss_mib(), 1)},
            )
        )
    finally:
        stop_process_group(process)
    return figures
