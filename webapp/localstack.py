"""A whole federation on one machine: a SuperLink, demo sites, the web app, as child processes.

`manage.py demo` and the integration tests both use it, so what the tests run is what a user
runs. Everything binds 127.0.0.1; every process is started in its own session and stopped by
its PID (its process group), never by name.
"""

import contextlib
import csv
import json
import os
import secrets
import signal
import ssl
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Callable
from dataclasses import dataclass, field
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


def flower_env(flwr_home: Path) -> dict[str, str]:
    """Environment for Flower processes: state in our folder, no network calls home."""
    venv_bin = str(Path(sys.executable).parent)
    return {
        # Flower starts its helpers (flower-superexec, flwr-serverapp) by name.
        "PATH": f"{venv_bin}{os.pathsep}{os.environ.get('PATH', '')}",
        "FLWR_HOME": str(flwr_home),
        "FLWR_TELEMETRY_ENABLED": "0",
        "FLWR_DISABLE_UPDATE_CHECK": "1",
        "FLWR_DISABLE_RUNTIME_DEPENDENCY_INSTALLATION": "1",
    }


def _slug(name: str) -> str:
    return "".join(ch if ch.isalnum() else "-" for ch in name.lower()).strip("-")


@dataclass(frozen=True)
class DemoSite:
    name: str
    config_path: Path
    host: str
    port: int
    token: str
    dataset: str = DEMO_DATASET


def write_demo_sites(
    base_dir: Path, superlink: str, api_ports: list[int], supernode_ports: list[int]
) -> list[DemoSite]:
    """Shard scikit-learn's breast-cancer set (a real clinical dataset shipped inside the
    package, no download) into one CSV per demo site, each with its own site.toml.

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
        site_dir = base_dir / _slug(name)
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


def wait_until(check: Callable[[], bool], timeout: float, what: str, proc=None) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc is not None and proc.poll() is not None:
            raise RuntimeError(f"{what}: the process exited with code {proc.returncode}")
        try:
            if check():
                return
        except OSError:
            pass
        time.sleep(0.3)
    raise TimeoutError(f"{what}: not ready after {timeout:.0f} s")


def http_ok(url: str, token: str | None = None, cafile: str | None = None) -> bool:
    request = urllib.request.Request(url)
    if token:
        request.add_header("Authorization", f"Bearer {token}")
    context = ssl.create_default_context(cafile=cafile) if cafile else None
    try:
        with urllib.request.urlopen(request, timeout=2, context=context) as response:  # noqa: S310
            return response.status == 200
    except urllib.error.URLError:
        return False


def site_supernode_running(site: DemoSite) -> bool:
    request = urllib.request.Request(f"http://{site.host}:{site.port}/health")
    request.add_header("Authorization", f"Bearer {site.token}")
    with urllib.request.urlopen(request, timeout=2) as response:  # noqa: S310 - loopback
        return json.load(response).get("supernode") == "running"


@dataclass(frozen=True)
class TlsFiles:
    """The SuperLink's TLS files (PEM): the CA bundle, its certificate and private key."""

    ca_certfile: Path
    certfile: Path
    keyfile: Path


@dataclass
class Service:
    name: str
    address: str
    process: subprocess.Popen
    log_path: Path


@dataclass
class LocalStack:
    """Child processes of one federation, stopped together (reverse order) by PID."""

    state_dir: Path
    env: dict[str, str] = field(default_factory=dict)
    services: list[Service] = field(default_factory=list)

    def _start(self, name: str, address: str, argv: list[str], env: dict[str, str]) -> Service:
        log_dir = self.state_dir / "logs"
        log_dir.mkdir(parents=True, exist_ok=True)
        log_path = log_dir / f"{_slug(name)}.log"
        log = log_path.open("ab")
        process = subprocess.Popen(
            argv,
            stdout=log,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
            env={**os.environ, **self.env, **env},
            start_new_session=True,  # its own process group: stopped with its children
        )
        log.close()
        service = Service(name, address, process, log_path)
        self.services.append(service)
        return service

    def start_superlink(
        self,
        port: int,
        timeout: float = 60,
        tls: TlsFiles | None = None,
        supernode_auth: bool = False,
    ) -> Service:
        """Plain HTTP by default (the demo); with `tls`, HTTPS and optionally SuperNode
        authentication (production mode, docs/production.md)."""
        flwr_home = self.state_dir / "flwr-superlink"
        flwr_home.mkdir(parents=True, exist_ok=True)
        if tls is None:
            transport = ["--insecure"]
        else:
            transport = [
                "--ssl-ca-certfile",
                str(tls.ca_certfile),
                "--ssl-certfile",
                str(tls.certfile),
                "--ssl-keyfile",
                str(tls.keyfile),
            ]
        if supernode_auth:
            transport.append("--enable-supernode-auth")
        argv = [
            str(Path(sys.executable).with_name("flower-superlink")),
            *transport,
            "--host",
            "127.0.0.1",
            "--port",
            str(port),
            "--disable-runtime-dependency-installation",
            "--database",
            str(self.state_dir / "superlink.db"),
        ]
        service = self._start("superlink", f"127.0.0.1:{port}", argv, flower_env(flwr_home))
        scheme = "http" if tls is None else "https"
        cafile = None if tls is None else str(tls.ca_certfile)
        wait_until(
            lambda: http_ok(f"{scheme}://127.0.0.1:{port}/health", cafile=cafile),
            timeout,
            "SuperLink",
            service.process,
        )
        return service

    def start_site(self, site: DemoSite) -> Service:
        argv = [sys.executable, "-m", "clients.site", "--config", str(site.config_path)]
        return self._start(site.name, f"http://{site.host}:{site.port}", argv, {})

    def wait_for_site(self, site: DemoSite, service: Service, timeout: float = 60) -> None:
        wait_until(
            lambda: site_supernode_running(site), timeout, f"site {site.name}", service.process
        )

    def start_web(self, port: int, timeout: float = 60) -> Service:
        argv = [
            sys.executable,
            str(Path(__file__).resolve().parent.parent / "manage.py"),
            "runserver",
            f"127.0.0.1:{port}",
            "--noreload",
        ]
        service = self._start("web", f"http://127.0.0.1:{port}/", argv, {})
        wait_until(
            lambda: http_ok(f"http://127.0.0.1:{port}/accounts/login/"),
            timeout,
            "web app",
            service.process,
        )
        return service

    def stop(self, grace: float = 10) -> None:
        for service in reversed(self.services):
            stop_process_group(service.process, grace)
        self.services.clear()


def start_gunicorn(env: dict[str, str], port: int, log_path: Path) -> subprocess.Popen:
    """The web app under the shipped production config (config/gunicorn.conf.py) on
    127.0.0.1:`port`, ready to serve; `env` is its whole environment (GUNICORN_* included)."""
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
            env={**env, "GUNICORN_BIND": f"127.0.0.1:{port}"},
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,  # stopped by its process group's id
        )
    try:
        wait_until(
            lambda: http_ok(f"http://127.0.0.1:{port}/accounts/login/"), 60, "gunicorn", process
        )
    except BaseException:
        stop_process_group(process)
        raise
    return process


def stop_process_group(process: subprocess.Popen, grace: float = 10) -> None:
    """SIGTERM the process's group, SIGKILL it if it has not gone after `grace` seconds."""
    if process.poll() is not None:
        return
    try:
        os.killpg(process.pid, signal.SIGTERM)
    except ProcessLookupError:
        return
    try:
        process.wait(grace)
    except subprocess.TimeoutExpired:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(process.pid, signal.SIGKILL)
        process.wait(5)
