"""A hospital site: its client API and its Flower SuperNode, run together.

    python -m clients.site --config site.toml

The client API (token-protected, read-only) tells the platform which datasets the site
holds: metadata only, never rows. The SuperNode connects to the platform's SuperLink and
runs the ClientApp (`clients.torch_client`) for each training message.

The SuperNode's output (and that of the superexec/clientapp processes it spawns) goes to
``<flwr_home>/supernode.log``, so the site's own stderr stays readable; restarts append.

The SuperNode and everything under it die with the site process however that ends (SIGKILL
included): it runs under `clients.group_guard`, which kills its process group when the site
goes. A restarted site therefore never finds a SuperNode of its previous life still
answering with its site key.
"""

from __future__ import annotations

import argparse
import hmac
import json
import logging
import os
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Sequence
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from clients.config import SiteConfig, SiteConfigError, load_site_config
from clients.datasets import describe_dataset
from clients.flower_env import VENV_BIN, flower_env

log = logging.getLogger("clients.site")

PROJECT_ROOT = Path(__file__).resolve().parent.parent
MAX_URL_LENGTH = 2048
MAX_HEADER_BYTES = 8192  # http.server itself allows 100 lines of 64 KiB
STOP_GRACE_SECONDS = 5.0
RESTART_BACKOFF_SECONDS = (5.0, 60.0)  # first delay, ceiling; doubles in between
# A SuperNode that ran at least this long counts as healthy: the next crash restarts fast.
STABLE_AFTER_SECONDS = 120.0


def supernode_command(cfg: SiteConfig) -> list[str]:
    if '"' in str(cfg.path):
        # The node config is parsed as TOML `key="value"`: a quote would end the value early.
        raise SiteConfigError(f"{cfg.path}: the site.toml path must not contain '\"'")
    if cfg.root_certificates is not None:
        transport = ["--root-certificates", str(cfg.root_certificates)]
    else:
        transport = ["--insecure"]
    if cfg.auth_key is not None:
        transport += ["--auth-supernode-private-key", str(cfg.auth_key)]
    return [
        str(VENV_BIN / "flower-supernode"),
        *transport,
        "--superlink",
        cfg.superlink,
        "--host",
        "127.0.0.1",
        "--port",
        str(cfg.supernode_port),
        "--node-config",
        f'site-config="{cfg.path}"',
    ]


def guarded(command: list[str]) -> list[str]:
    """`command` under clients.group_guard: its process group ends when this process does."""
    return [sys.executable, "-m", "clients.group_guard", str(os.getpid()), *command]


def supernode_env(cfg: SiteConfig) -> dict[str, str]:
    env = flower_env(cfg.flwr_home)
    # The ClientApp imports `clients.*`: make that work from a checkout that is not
    # pip-installed, too.
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(PROJECT_ROOT), env.get("PYTHONPATH")]))
    return env


class SuperNodeSupervisor:
    """Runs the SuperNode (under its group guard) in its own process group and restarts it
    when it dies."""

    def __init__(self, cfg: SiteConfig) -> None:
        self.cfg = cfg
        self.log_path = cfg.flwr_home / "supernode.log"
        self._process: subprocess.Popen[bytes] | None = None
        self._lock = threading.Lock()  # guards _process against stop() racing a restart
        self._stopping = threading.Event()
        self._monitor: threading.Thread | None = None

    def is_running(self) -> bool:
        with self._lock:
            return self._process is not None and self._process.poll() is None

    def start(self) -> None:
        self._spawn()
        self._monitor = threading.Thread(target=self._watch, name="supernode-monitor", daemon=True)
        self._monitor.start()

    def stop(self) -> None:
        self._stopping.set()
        with self._lock:
            process = self._process
        if process is not None:
            _stop_group(process)
        if self._monitor is not None:
            self._monitor.join(timeout=STOP_GRACE_SECONDS)

    def _spawn(self) -> None:
        with self._lock:
            self._process = None
            if self._stopping.is_set():
                return
            try:
                self.cfg.flwr_home.mkdir(parents=True, exist_ok=True)
                with self.log_path.open("ab") as out:
                    self._process = subprocess.Popen(
                        guarded(supernode_command(self.cfg)),
                        env=supernode_env(self.cfg),
                        stdin=subprocess.DEVNULL,
                        stdout=out,
                        stderr=subprocess.STDOUT,
                        # Its own group: stopping it must also reach superexec and clientapps.
                        start_new_session=True,
                    )
            except OSError as e:
                log.error("cannot start the SuperNode: %s", e)
                return
        log.info(
            "SuperNode started (process group %d), output in %s", self._process.pid, self.log_path
        )

    def _watch(self) -> None:
        low, high = RESTART_BACKOFF_SECONDS
        delay = low
        while not self._stopping.is_set():
            with self._lock:
                process = self._process
            if process is None:
                problem = "could not be started"
            else:
                started = time.monotonic()
                code = process.wait()
                if self._stopping.is_set():
                    return
                _stop_group(process)  # leftover superexec/clientapp children
                problem = f"exited with code {code} (see {self.log_path})"
                if time.monotonic() - started >= STABLE_AFTER_SECONDS:
                    delay = low
            if not self.cfg.restart_supernode:
                log.error("SuperNode %s; restart_supernode is off", problem)
                return
            log.warning("SuperNode %s; restarting in %.0f s", problem, delay)
            if self._stopping.wait(delay):
                return
            delay = min(delay * 2, high)
            self._spawn()


def _stop_group(process: subprocess.Popen[bytes]) -> None:
    """TERM the process group, then KILL whatever is left after the grace period."""
    group = process.pid  # start_new_session: the group id is the leader's pid
    if not _signal_group(group, signal.SIGTERM):
        process.poll()  # reap the leader if it is a zombie
        return
    deadline = time.monotonic() + STOP_GRACE_SECONDS
    while time.monotonic() < deadline:
        process.poll()
        if not _signal_group(group, 0):
            return
        time.sleep(0.1)
    log.warning("SuperNode process group %d ignored SIGTERM; killing it", group)
    _signal_group(group, signal.SIGKILL)
    process.wait()


def _signal_group(group: int, sig: int) -> bool:
    """Send `sig` to a process group; False when the group no longer exists."""
    try:
        os.killpg(group, sig)
    except ProcessLookupError:
        return False
    return True


def make_api_server(
    cfg: SiteConfig, supernode_running: Callable[[], bool] = lambda: False
) -> ThreadingHTTPServer:
    """The site's client API bound to cfg.host:cfg.port (port 0: a free port)."""

    class Handler(_ApiHandler):
        site = cfg
        supernode_is_running = staticmethod(supernode_running)

    return ThreadingHTTPServer((cfg.host, cfg.port), Handler)


class _ApiHandler(BaseHTTPRequestHandler):
    site: SiteConfig
    supernode_is_running: Callable[[], bool]
    server_version = "fedtrack-site"  # no Python version: nothing to fingerprint
    timeout = 10  # seconds a client may take to send its request: no idle thread hoarding

    def parse_request(self) -> bool:
        if not super().parse_request():
            return False
        if self.request_version == "HTTP/0.9":
            self.send_error(400, "HTTP/0.9 requests are not supported")
            return False
        if sum(len(name) + len(value) for name, value in self.headers.items()) > MAX_HEADER_BYTES:
            self.send_error(431, "request headers too large")
            return False
        return True

    def do_GET(self) -> None:
        try:
            self._get()
        except (BrokenPipeError, ConnectionResetError):
            pass  # the client hung up: nobody left to answer
        except Exception:  # the API must keep serving whatever one request hits
            log.exception("error while serving %s", self._path())
            self._send_json(500, {"error": "internal error"})

    def _get(self) -> None:
        if len(self.path) > MAX_URL_LENGTH:
            self._send_json(414, {"error": "URL too long"})
            return
        routes: dict[str, Callable[[], dict[str, Any]]] = {
            "/health": self._health,
            "/datasets": self._datasets,
        }
        route = routes.get(self._path())
        if route is None:
            self._send_json(404, {"error": f"no such endpoint: {self._path()}"})
            return
        problem = self._auth_problem()
        if problem:
            self._send_json(401, {"error": problem}, {"WWW-Authenticate": "Bearer"})
            return
        self._send_json(200, route())

    def _method_not_allowed(self) -> None:
        self._send_json(405, {"error": f"method {self.command} not allowed"}, {"Allow": "GET"})

    do_HEAD = do_POST = do_PUT = do_PATCH = do_DELETE = do_OPTIONS = _method_not_allowed

    def version_string(self) -> str:
        return self.server_version

    def _health(self) -> dict[str, Any]:
        return {
            "status": "ok",
            "name": self.site.name,
            "datasets": len(self.site.datasets),
            "supernode": "running" if self.supernode_is_running() else "stopped",
        }

    def _datasets(self) -> dict[str, Any]:
        return {
            "site": self.site.name,
            "datasets": [describe_dataset(spec) for spec in self.site.datasets],
        }

    def _auth_problem(self) -> str | None:
        header = self.headers.get("Authorization")
        if not header:
            return "missing Authorization: Bearer <token> header"
        scheme, _, token = header.partition(" ")
        if scheme.lower() != "bearer" or not token.strip():
            return "expected Authorization: Bearer <token>"
        if not hmac.compare_digest(token.strip().encode(), self.site.token.encode()):
            return "invalid token"
        return None

    def _path(self) -> str:
        # `path` is unset when http.server rejects the request line before parsing it
        return urlsplit(getattr(self, "path", "")).path

    def _send_json(
        self, status: int, body: dict[str, Any], headers: dict[str, str] | None = None
    ) -> None:
        payload = json.dumps(body).encode()
        if getattr(self, "request_version", "HTTP/0.9") == "HTTP/0.9":
            # http.server writes no status line nor headers for HTTP/0.9, which is also what
            # it assumes for a request line it could not parse: answer as HTTP/1.0.
            self.request_version = "HTTP/1.0"
            self.close_connection = True
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(payload)))
        self.send_header("Cache-Control", "no-store")
        for name, value in (headers or {}).items():
            self.send_header(name, value)
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(payload)

    def send_error(self, code: int, message: str | None = None, explain: str | None = None) -> None:
        # http.server's own errors (bad request line, oversized headers, unknown method): JSON
        # too. `command` is unset when the request line itself could not be parsed.
        self.command = getattr(self, "command", None) or "GET"
        self._send_json(code, {"error": message or self.responses.get(code, ("error",))[0]})

    def log_request(self, code: int | str = "-", size: int | str = "-") -> None:
        # Path only: a query string could carry something secret; headers are never logged.
        log.info("%s %s %s %s", self.client_address[0], self.command or "-", self._path(), code)

    def log_message(self, fmt: str, *args: Any) -> None:
        log.info("%s %s", self.client_address[0], fmt % args)


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m clients.site", description="Run a site's client API and SuperNode."
    )
    parser.add_argument("--config", required=True, help="path to the site's site.toml")
    args = parser.parse_args(argv)
    logging.basicConfig(
        level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s"
    )
    try:
        cfg = load_site_config(args.config)
        supernode_command(cfg)  # fail now, not in the monitor thread, on a bad path
    except SiteConfigError as e:
        print(f"error: {e}", file=sys.stderr)
        return 2

    supervisor = SuperNodeSupervisor(cfg)
    try:
        server = make_api_server(cfg, supervisor.is_running)
    except OSError as e:
        print(f"error: cannot serve the client API on {cfg.host}:{cfg.port}: {e}", file=sys.stderr)
        return 1

    stop = threading.Event()
    for sig in (signal.SIGINT, signal.SIGTERM):
        signal.signal(sig, lambda signum, frame: stop.set())

    api = threading.Thread(target=server.serve_forever, name="client-api", daemon=True)
    api.start()
    supervisor.start()
    host, port = server.server_address[:2]
    print(f"client API  http://{host}:{port}", flush=True)
    print(f"SuperNode   → SuperLink {cfg.superlink} (local port {cfg.supernode_port})", flush=True)
    for spec in cfg.datasets:  # tell the operator now, not when a job fails
        description = describe_dataset(spec)
        if description["ok"]:
            log.info("dataset %r: %d rows", spec.name, description["rows"])
        else:
            log.warning("dataset %r is unusable: %s", spec.name, description["error"])
    try:
        stop.wait()
    finally:
        log.info("stopping")
        supervisor.stop()
        server.shutdown()
        server.server_close()
    return 0


if __name__ == "__main__":
    sys.exit(main())
