"""One round of 100 clients' metrics: our tracker vs. MLflow's `log_batch`, side by side.

Ours: 100 `reported()` calls (validated report, snapshot fields, history row, status event)
and the one flush that writes them in a transaction — what the ServerApp does for a round.
MLflow (what users reach for instead), with a local SQLite store under a temporary dir:
(a) one run per client, one `log_batch` of its 7 metrics per client — the natural mapping;
(b) one run for the job, a single `log_batch` of all 700 metrics — MLflow's fastest path.
Runs/experiments are created before timing, as our job and its clients are.
"""

import tempfile
import time
from pathlib import Path

from bench.common import Figure, make_job, make_owner, median, synthetic_report
from webapp import tracking

CLIENTS = 100
METRICS = ("accuracy", "loss", "train_loss", "train_samples", "test_samples", "response_time")


def time_ours(rounds: int) -> list[float]:
    job = make_job(make_owner("mlflow-vs"), CLIENTS)
    tracker = tracking.ClientTracker(job.pk, min_flush_interval=0)
    client_ids = tracker.client_ids
    for client_id in client_ids:  # the round's start is not part of "recording its metrics"
        tracker.training(client_id, 1)
    tracker.flush()
    timings = []
    for server_round in range(1, rounds + 1):
        started = time.perf_counter()
        for i, client_id in enumerate(client_ids):
            tracker.reported(
                client_id, server_round, synthetic_report(i, server_round), response_time=1.2
            )
        tracker.flush()
        timings.append(time.perf_counter() - started)
    return timings


def _metrics(i: int, server_round: int, prefix: str = ""):
    from mlflow.entities import Metric

    report = synthetic_report(i, server_round)
    now = int(time.time() * 1000)
    values = {
        "accuracy": report.accuracy,
        "loss": report.loss,
        "train_loss": report.train_loss,
        "train_samples": report.train_samples,
        "test_samples": report.test_samples,
        "response_time": 1.2,
        "round": server_round,
    }
    return [Metric(f"{prefix}{k}", float(v), now, server_round) for k, v in values.items()]


def time_mlflow(rounds: int, store_dir: Path) -> tuple[list[float], list[float], str]:
    import mlflow
    from mlflow.tracking import MlflowClient

    uri = f"sqlite:///{store_dir / 'mlflow.db'}"
    client = MlflowClient(tracking_uri=uri)
    experiment = client.create_experiment("fedtrack-bench", artifact_location=str(store_dir))
    runs = [client.create_run(experiment).info.run_id for _ in range(CLIENTS)]
    job_run = client.create_run(experiment).info.run_id
    per_client, single = [], []
    for server_round in range(1, rounds + 1):
        started = time.perf_counter()
        for i, run_id in enumerate(runs):
            client.log_batch(run_id, metrics=_metrics(i, server_round))
        per_client.append(time.perf_counter() - started)
        started = time.perf_counter()
        batch = [m for i in range(CLIENTS) for m in _metrics(i, server_round, f"client_{i}/")]
        client.log_batch(job_run, metrics=batch)
        single.append(time.perf_counter() - started)
    return per_client, single, f"mlflow {mlflow.__version__}, {uri.split(':')[0]} store"


def run(db: str, quick: bool) -> list[Figure]:
    rounds = 5 if quick else 15
    ours = time_ours(rounds)
    with tempfile.TemporaryDirectory(prefix="fedtrack-mlflow-") as tmp:
        per_client, single, what = time_mlflow(rounds, Path(tmp))
    ours_ms, per_client_ms, single_ms = (
        median(ours) * 1000,
        median(per_client) * 1000,
        median(single) * 1000,
    )
    ratio_runs = per_client_ms / ours_ms
    ratio_single = single_ms / ours_ms
    return [
        Figure(
            "mlflow",
            f"one round of {CLIENTS} clients' metrics: tracker vs MLflow log_batch "
            "(a run per client)",
            f"ours {ours_ms:.1f} ms, MLflow {per_client_ms:.0f} ms → {ratio_runs:.0f}× faster",
            "≥ 10× faster",
            ratio_runs >= 10,
            db,
            {"ours_ms": ours_ms, "mlflow_ms": per_client_ms, "rounds": rounds, "mlflow": what},
        ),
        Figure(
            "mlflow",
            f"same, MLflow's fastest path: one run, one log_batch of {CLIENTS * 7} metrics",
            f"ours {ours_ms:.1f} ms, MLflow {single_ms:.0f} ms → {ratio_single:.1f}× faster",
            "recorded",
            None,
            db,
            {"ours_ms": ours_ms, "mlflow_ms": single_ms, "rounds": rounds, "mlflow": what},
        ),
    ]
