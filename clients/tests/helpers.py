"""Builders for the real files the tests read (CSVs and site.toml), and the process identity
Flower messages need when a test builds them outside Flower's runtime."""

from __future__ import annotations

import csv
from pathlib import Path

import numpy as np
import pytest
from flwr.supercore.task_identity import TaskIdentity
from sklearn.datasets import load_breast_cancer


def breast_cancer() -> tuple[np.ndarray, np.ndarray, list[str]]:
    data = load_breast_cancer(as_frame=False)
    names = [name.replace(" ", "_") for name in data.feature_names]
    return data.data, data.target, names


def write_csv(path: Path, header: list[str], rows: list[list[object]]) -> Path:
    with path.open("w", newline="", encoding="utf-8") as f:
        writer = csv.writer(f)
        writer.writerow(header)
        writer.writerows(rows)
    return path


def write_breast_cancer_csv(path: Path, rows: slice = slice(None)) -> Path:
    X, y, names = breast_cancer()
    return write_csv(
        path,
        [*names, "target"],
        [[*map(float, x), int(t)] for x, t in zip(X[rows], y[rows], strict=True)],
    )


def write_site_toml(
    folder: Path,
    datasets: dict[str, str],
    *,
    token: str = "s3cret-token",
    superlink: str = "127.0.0.1:9092",
    extra: str = "",
) -> Path:
    """A site.toml in `folder`; `datasets` maps dataset name → CSV path, target "target"."""
    lines = [
        'name = "Hospital Test"',
        f'token = "{token}"',
        f'superlink = "{superlink}"',
        "port = 0",
        extra,
    ]
    for name, csv_path in datasets.items():
        lines += ["[[datasets]]", f'name = "{name}"', f'path = "{csv_path}"', 'target = "target"']
    path = folder / "site.toml"
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return path


SERVER_APP_NODE = 1  # the SuperLink's node id: the ServerApp's messages come from it


def act_as_server_app(monkeypatch: pytest.MonkeyPatch) -> None:
    """Flower 1.42 stamps every new Message with the process's task identity, which the
    ServerApp runtime sets; outside that runtime Message(...) raises RuntimeError."""
    monkeypatch.setattr(TaskIdentity, "_task_id", 1)
    monkeypatch.setattr(TaskIdentity, "_run_id", 1)
    monkeypatch.setattr(TaskIdentity, "_node_id", SERVER_APP_NODE)
