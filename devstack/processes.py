"""Child processes of a federation on one machine: SuperLink, sites, web app, gunicorn.

`manage.py demo`, the integration tests and `make bench` all start them from here, so what the
tests run is what a user runs. Everything binds 127.0.0.1; every process is started in its own
session and stopped by its PID (its process group), never by name.
"""

import contextlib
import json
import os
import signal
import socket
import ssl
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from clients.flower_env import VENV_BIN, flower_env
from devstack.demo_data import DemoSite, slug

ROOT = Path(__file__).resolve().parent.parent
# A service that dies is started again after a back-off: the first delay, doubling up to the
# ceiling; one that ran this long before dying counts as healthy and restarts fast again
# (as a site restarts its SuperNode, clients/site.py).
RESTART_BACKOFF_SECONDS = (2.0, 60.0)
STABLE_AFTER_SECONDS = 120.0
# The name of the platform's SuperLink in the Flower home `write_cli_connection` writes:
# Flower's CLI (`flwr ls`, `flwr log`) takes a connection name, not an address.
CLI_CONNECTION = "fedtrack"


def free_port() -> int:
    """A TCP port free on 127.0.0.1 now (nothing stops another process taking it first)."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def wait_until(
    check: Callable[[], bool], timeout: float, what: str, proc: subprocess.Popen | None = None
) -> None:
    """Poll `check` until it is true; fail early if `proc` exits, and after `timeout` s."""
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
    """The site's client API reports its SuperNode running."""
    request = urllib.request.Request(f"http://{site.host}:{site.port}/health")
    request.add_header("Authorization", f"Bearer {site.token}")
    with urllib.request.urlopen(request, timeout=2) as response:  # noqa: S310 - loopback
        return json.load(response).get("supernode") == "running"


def write_cli_connection(flwr_home: Path, name: str, address: str) -> Path:
    """A Flower home (`FLWR_HOME`) whose config.toml names the plain-HTTP SuperLink at
    `address` `name`, the default: with it `flwr ls NAME` and `flwr log RUN NAME` reach the
    platform's SuperLink. Rewritten each time: the file is the demo's, not the user's."""
    flwr_home.mkdir(parents=True, exist_ok=True)
    config = flwr_home / "config.toml"
    config.write_text(
        f'[superlink]\ndefault = "{name}"\n\n'
        f'[superlink.{name}]\naddress = "{address}"\ninsecure = true\n',
        encoding="utf-8",
    )
    return config


@dataclass(frozen=True)
class TlsFiles:
    """The SuperLink's TLS files (PEM): the CA bundle, its certificate and private key."""

    ca_certfile: Path
    certfile: Path
    keyfile: Path


@dataclass
class Service:
    """A started process, with what it takes to start it again."""

    name: str
    address: str
    process: subprocess.Popen
    log_path: Path
    argv: list[str]
    env: dict[str, str]
    started_at: float = field(default_factory=time.monotonic)
    delay: float = RESTART_BACKOFF_SECONDS[0]
    restart_at: float | None = None  # set while it is dead and waiting for its restart


@dataclass
class LocalFederation:
    """The child processes of one federation, stopped together (reverse order) by PID.

    `env` is added to this process's environment for every child; output goes to
    `state_dir/logs/<name>.log`.
    """

    state_dir: Path
    env: dict[str, str] = field(default_factory=dict)
    services: list[Service] = field(default_factory=list)

    def environment(self) -> dict[str, str]:
        return {**os.environ, **self.env}

    def _start(self, name: str, address: str, argv: list[str], env: dict[str, str]) -> Service:
        """Start `argv` with the whole environment `env`, in its own process group."""
        log_dir = self.state_dir / "logs"
        log_dir.mkdir(parents=True, exist_ok=True)
        log_path = log_dir / f"{slug(name)}.log"
        service = Service(name, address, _spawn(argv, env, log_path), log_path, argv, env)
        self.services.append(service)
        return service

    def keep_alive(self, now: float | None = None) -> list[str]:
        """One look at every service: a dead one is reported and started again after its
        back-off, the others are left alone. Returns what happened, one line each, for the
        operator. Called every second or so by whoever keeps the federation up (`manage.py
        demo`): a federation survives a site dying, so must the demo."""
        now = time.monotonic() if now is None else now
        events = []
        for service in self.services:
            if service.restart_at is None:
                code = service.process.poll()
                if code is None:
                    continue
                kill_leftovers(service.process)  # whatever it left in its process group
                if now - service.started_at >= STABLE_AFTER_SECONDS:
                    service.delay = RESTART_BACKOFF_SECONDS[0]
                service.restart_at = now + service.delay
                events.append(
                    f"{service.name} exited with code {code}; restarting in "
                    f"{service.delay:.0f} s (log: {service.log_path})"
                )
            elif now >= service.restart_at:
                service.process = _spawn(service.argv, service.env, service.log_path)
                service.started_at, service.restart_at = now, None
                service.delay = min(service.delay * 2, RESTART_BACKOFF_SECONDS[1])
                events.append(f"{service.name} restarted (pid {service.process.pid})")
        return events

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
            str(VENV_BIN / "flower-superlink"),
            *transport,
            "--host",
            "127.0.0.1",
            "--port",
            str(port),
            "--disable-runtime-dependency-installation",
            "--database",
            str(self.state_dir / "superlink.db"),
        ]
        env = flower_env(flwr_home, self.environment())
        service = self._start("superlink", f"127.0.0.1:{port}", argv, env)
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
        """The site's client API and SuperNode (`python -m clients.site`); not waited for."""
        argv = [sys.executable, "-m", "clients.site", "--config", str(site.config_path)]
        return self._start(site.name, f"http://{site.host}:{site.port}", argv, self.environment())

    def wait_for_site(self, site: DemoSite, service: Service, timeout: float = 60) -> None:
        wait_until(
            lambda: site_supernode_running(site), timeout, f"site {site.name}", service.process
        )

    def start_web(self, port: int, timeout: float = 60) -> Service:
        """Django's development server, ready to serve."""
        argv = [
            sys.executable,
            str(ROOT / "manage.py"),
            "runserver",
            f"127.0.0.1:{port}",
            "--noreload",
        ]
        service = self._start("web", f"http://127.0.0.1:{port}/", argv, self.environment())
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
    with log_path.open("ab") as log:
        process = subprocess.Popen(
            [
                str(VENV_BIN / "gunicorn"),
                "-c",
                str(ROOT / "config" / "gunicorn.conf.py"),
                "config.wsgi:application",
            ],
            cwd=ROOT,
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


def _spawn(argv: list[str], env: dict[str, str], log_path: Path) -> subprocess.Popen:
    with log_path.open("ab") as log:
        return subprocess.Popen(
            argv,
            stdout=log,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
            env=env,
            start_new_session=True,  # its own process group: stopped with its children
        )


def kill_leftovers(process: subprocess.Popen) -> None:
    """KILL what is left in the group of a leader that has exited (its pid is the group's id
    until the last member is gone)."""
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(process.pid, signal.SIGKILL)


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
