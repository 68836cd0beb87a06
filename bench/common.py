"""What every benchmark shares: a fresh database, Django set up on it, figures and stats."""

import os
import statistics
import tempfile
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit, urlunsplit

ROOT = Path(__file__).resolve().parent.parent
SECRET_KEY = "bench-only-secret-key-not-for-production"  # noqa: S105 - local benchmark DB only
# Your own database name on a shared PostgreSQL server (Django never touches others).
POSTGRES_URL = os.environ.get(
    "BENCH_POSTGRES_URL", "postgres://postgres:postgres@127.0.0.1:5432/fedtrack_bench"
)


@dataclass
class Figure:
    """One line of the results table."""

    benchmark: str
    figure: str
    measured: str
    target: str
    passed: bool | None  # None: recorded, no target to pass
    db: str = ""
    values: dict[str, Any] = field(default_factory=dict)

    def to_json(self) -> dict[str, Any]:
        return asdict(self)


def percentile(values: list[float], q: float) -> float:
    """The q-th percentile (0-100), nearest-rank on sorted data; NaN for no data."""
    if not values:
        return float("nan")
    ordered = sorted(values)
    rank = max(0, min(len(ordered) - 1, round(q / 100 * len(ordered) + 0.5) - 1))
    return ordered[rank]


def median(values: list[float]) -> float:
    return statistics.median(values) if values else float("nan")


def rss_mib(pid: int | str = "self") -> float:
    """Resident memory of one process now (not the peak), in MiB."""
    with open(f"/proc/{pid}/statm") as fh:
        pages = int(fh.read().split()[1])
    return pages * os.sysconf("SC_PAGE_SIZE") / 2**20


def fresh_database_url(db: str, work_dir: Path) -> str:
    """An empty database of the chosen kind: a new SQLite file, or a re-created PostgreSQL DB."""
    if db == "sqlite":
        return f"sqlite:///{work_dir / 'bench.sqlite3'}"
    if db != "postgres":
        raise ValueError(f"unknown database kind {db!r} (sqlite or postgres)")
    import psycopg

    parts = urlsplit(POSTGRES_URL)
    name = parts.path.lstrip("/")
    admin = urlunsplit(parts._replace(path="/postgres"))
    with psycopg.connect(admin, autocommit=True) as conn:
        conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        conn.execute(f'CREATE DATABASE "{name}"')
    return POSTGRES_URL


def django_env(database_url: str, var_dir: Path) -> dict[str, str]:
    """The environment of every process of a benchmark (web workers, ServerApps)."""
    return {
        "DJANGO_SETTINGS_MODULE": "config.settings",
        "SECRET_KEY": SECRET_KEY,
        "DATABASE_URL": database_url,
        "FEDTRACK_VAR_DIR": str(var_dir),
        "DEBUG": "0",
        "LOG_LEVEL": "WARNING",
    }


def setup_django(db: str) -> tuple[Path, dict[str, str]]:
    """Point this process at a fresh, migrated database; returns its work dir and environment."""
    work_dir = Path(tempfile.mkdtemp(prefix=f"fedtrack-bench-{db}-"))
    env = django_env(fresh_database_url(db, work_dir), work_dir / "var")
    os.environ.update(env)
    import django
    from django.core.management import call_command

    django.setup()
    call_command("migrate", verbosity=0)
    return work_dir, env


def make_owner(name: str):
    from django.contrib.auth import get_user_model

    users = get_user_model().objects
    return users.filter(username=name).first() or users.create_user(
        name, password=f"{name}-bench-password"
    )


def make_job(owner, n_clients: int, **fields):
    """A job with n clients on n registered sites, stored as start_training stores it."""
    from webapp.jobs import store_job
    from webapp.models import Connection, TrainingJob

    # Sites are named per job: one owner may hold several benchmark jobs.
    prefix = f"Hospital {Connection.objects.filter(owner=owner).count():05d}-"
    Connection.objects.bulk_create(
        Connection(
            owner=owner,
            name=f"{prefix}{i:04d}",
            ip=f"10.0.{i // 250}.{i % 250 + 1}",
            port=5000,
            token=f"token-{prefix}{i}",
        )
        for i in range(n_clients)
    )
    connections = list(
        Connection.objects.filter(owner=owner, name__startswith=prefix).order_by("name")
    )
    defaults = {
        "name": f"bench {n_clients} clients",
        "total_rounds": 100,
        "min_clients": 1,
        "status": TrainingJob.Status.RUNNING,
        "model_config": {
            "feature_names": ["a", "b"],
            "classes": ["0", "1"],
            "target": "y",
            "hidden_size": 32,
        },
    }
    clients = [(c, "breast_cancer") for c in connections]
    return store_job(owner, clients, **{**defaults, **fields})


def synthetic_report(i: int, server_round: int):
    """A plausible, valid report: accuracy creeping up with the rounds."""
    from webapp.tracking import RoundReport

    accuracy = min(0.99, 0.6 + 0.003 * server_round + (i % 17) / 200)
    return RoundReport(
        accuracy=accuracy,
        loss=1.0 - accuracy,
        train_loss=0.9 - accuracy / 2,
        train_samples=80 + i % 50,
        test_samples=20 + i % 13,
    )
