"""The demo's hospital sites: shards of scikit-learn's breast-cancer set (a real clinical
dataset shipped inside the package, no download), one CSV and one site.toml per site."""

import csv
import json
import secrets
from dataclasses import dataclass
from pathlib import Path

import numpy as np

DEMO_SITES = [
    # name, dataset shard sizes per class (malignant, benign): different sizes and balance
    ("Hospital Barcelona", (70, 180)),
    ("Hospital Madrid", (90, 90)),
    ("Hospital Valencia", (52, 87)),
]
DEMO_DATASET = "breast_cancer"
DEMO_TARGET = "diagnosis"  # 0 = malignant, 1 = benign (scikit-learn's encoding)


def slug(name: str) -> str:
    """`Hospital Madrid` → `hospital-madrid`: a folder or file name."""
    return "".join(ch if ch.isalnum() else "-" for ch in name.lower()).strip("-")


@dataclass(frozen=True)
class DemoSite:
    """A site written to disk: where its site.toml is and how to reach its client API."""

    name: str
    config_path: Path
    host: str
    port: int
    token: str
    dataset: str = DEMO_DATASET


def write_demo_sites(
    base_dir: Path, superlink: str, api_ports: list[int], supernode_ports: list[int]
) -> list[DemoSite]:
    """The three demo sites under `base_dir`, each with its own shard of the breast-cancer set.

    Tokens are kept across runs so registered connections stay valid.
    """
    from sklearn.datasets import load_breast_cancer

    data = load_breast_cancer()
    rng = np.random.default_rng(7)
    by_class = {label: rng.permutation(np.flatnonzero(data.target == label)) for label in (0, 1)}
    taken = {0: 0, 1: 0}
    sites = []
    for (name, sizes), api_port, node_port in zip(
        DEMO_SITES, api_ports, supernode_ports, strict=True
    ):
        site_dir = base_dir / slug(name)
        site_dir.mkdir(parents=True, exist_ok=True)
        rows = []
        for label, size in zip((0, 1), sizes, strict=True):
            rows.extend(by_class[label][taken[label] : taken[label] + size])
            taken[label] += size
        rows = rng.permutation(np.array(rows))
        csv_path = write_demo_csv(site_dir, data, rows)
        token_file = site_dir / "token"
        if not token_file.exists():
            token_file.write_text(secrets.token_urlsafe(24))
            token_file.chmod(0o600)
        token = token_file.read_text().strip()
        config_path = write_site_toml(site_dir, name, api_port, node_port, superlink, csv_path)
        sites.append(DemoSite(name, config_path, "127.0.0.1", api_port, token))
    return sites


def write_demo_csv(site_dir: Path, data, rows) -> Path:
    """The chosen rows of scikit-learn's breast-cancer set as the site's demo dataset."""
    csv_path = site_dir / f"{DEMO_DATASET}.csv"
    with csv_path.open("w", newline="") as fh:
        writer = csv.writer(fh)
        writer.writerow([*data.feature_names, DEMO_TARGET])
        for i in rows:
            writer.writerow([*(f"{v:.6g}" for v in data.data[i]), int(data.target[i])])
    return csv_path


def write_site_toml(
    site_dir: Path, name: str, api_port: int, node_port: int, superlink: str, csv_path: Path
) -> Path:
    """A loopback site.toml serving one dataset, with its token in `site_dir/token`."""
    config_path = site_dir / "site.toml"
    config_path.write_text(
        f"name = {json.dumps(name)}\n"
        'host = "127.0.0.1"\n'
        f"port = {api_port}\n"
        'token_file = "token"\n'
        f"superlink = {json.dumps(superlink)}\n"
        f"supernode_port = {node_port}\n"
        "\n[[datasets]]\n"
        f"name = {json.dumps(DEMO_DATASET)}\n"
        f'path = "{csv_path.name}"\n'
        f"target = {json.dumps(DEMO_TARGET)}\n"
    )
    return config_path
