from __future__ import annotations

import contextlib
import http.client
import json
import logging
import os
import signal
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from clients.config import SiteConfig, load_site_config
from clients.flower_env import flower_env
from clients.site import PROJECT_ROOT, main, make_api_server, supernode_command, supernode_env
from clients.tests.helpers import breast_cancer, write_breast_cancer_csv, write_site_toml
from devstack.processes import free_port

TOKEN = "s3cret-token"
AUTH = {"Authorization": f"Bearer {TOKEN}"}
VENV_BIN = Path(sys.executable).parent

Response = tuple[int, dict[str, str], Any]


@pytest.fixture
def cfg(tmp_path: Path) -> SiteConfig:
    write_breast_cancer_csv(tmp_path / "good.csv", rows=slice(0, 100))
    (tmp_path / "bad.csv").write_text("a,b,target\n1,x,0\n", encoding="utf-8")
    return load_site_config(
        write_site_toml(tmp_path, {"good": "good.csv", "bad": "bad.csv"}, token=TOKEN)
    )


@pytest.fixture
def api(cfg: SiteConfig) -> Iterator[tuple[str, int]]:
    server = make_api_server(cfg, lambda: True)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield server.server_address[:2]
    server.shutdown()
    server.server_close()


def request(
    address: tuple[str, int], path: str, headers: dict[str, str] | None = None, method: str = "GET"
) -> Response:
    connection = http.client.HTTPConnection(*address, timeout=10)
    try:
        connection.request(method, path, headers=headers or {})
        response = connection.getresponse()
        raw = response.read()
        return response.status, dict(response.headers), json.loads(raw) if raw else None
    finally:
        connection.close()


def raw_request(address: tuple[str, int], data: bytes) -> bytes:
    with socket.create_connection(address, timeout=10) as sock:
        sock.sendall(data)
        chunks = []
        while chunk := sock.recv(65536):
            chunks.append(chunk)
    return b"".join(chunks)


def test_health_reports_the_site_and_its_supernode(api: tuple[str, int]) -> None:
    status, headers, body = request(api, "/health", AUTH)

    assert status == 200
    assert headers["Content-Type"] == "application/json"
    assert body == {"status": "ok", "name": "Hospital Test", "datasets": 2, "supernode": "running"}


def test_health_says_stopped_when_the_supernode_is_not_running(cfg: SiteConfig) -> None:
    server = make_api_server(cfg)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        assert request(server.server_address[:2], "/health", AUTH)[2]["supernode"] == "stopped"
    finally:
        server.shutdown()
        server.server_close()


@pytest.mark.parametrize(
    ("headers", "error"),
    [
        ({}, "missing Authorization: Bearer <token> header"),
        ({"Authorization": "Bearer wrong-token"}, "invalid token"),
        ({"Authorization": f"Basic {TOKEN}"}, "expected Authorization: Bearer <token>"),
        ({"Authorization": "Bearer "}, "expected Authorization: Bearer <token>"),
    ],
)
@pytest.mark.parametrize("path", ["/health", "/datasets"])
def test_it_requires_the_sites_bearer_token(
    api: tuple[str, int], path: str, headers: dict[str, str], error: str
) -> None:
    status, response_headers, body = request(api, path, headers)

    assert status == 401
    assert response_headers["WWW-Authenticate"] == "Bearer"
    assert body == {"error": error}


def test_it_describes_good_datasets_and_reports_bad_ones(api: tuple[str, int]) -> None:
    status, _, body = request(api, "/datasets", AUTH)

    assert status == 200
    assert body["site"] == "Hospital Test"
    good, bad = body["datasets"]
    assert good["name"] == "good" and good["ok"] is True
    assert (good["rows"], good["features"]) == (100, 30)
    assert good["class_counts"] == {"0": 65, "1": 35}
    assert bad == {
        "name": "bad",
        "target": "target",
        "ok": False,
        "error": "non-numeric value 'x' in column 'b' at line 2",
    }


def test_it_never_serves_row_values(api: tuple[str, int]) -> None:
    X, _, _ = breast_cancer()
    cells = {str(float(v)) for v in X[:100].ravel()}
    distinctive = {c for c in cells if len(c) >= 5}  # short ones may match counts by chance

    raw = raw_request(
        api, f"GET /datasets HTTP/1.0\r\nAuthorization: Bearer {TOKEN}\r\n\r\n".encode()
    )

    assert b'"ok": true' in raw
    assert [c for c in distinctive if c.encode() in raw] == []


def test_it_answers_unknown_paths_with_404_json(api: tuple[str, int]) -> None:
    assert request(api, "/rows", AUTH)[::2] == (404, {"error": "no such endpoint: /rows"})


@pytest.mark.parametrize("method", ["POST", "PUT", "DELETE", "PATCH"])
def test_it_refuses_other_methods_with_405_json(api: tuple[str, int], method: str) -> None:
    status, headers, body = request(api, "/datasets", AUTH, method)

    assert status == 405
    assert headers["Allow"] == "GET"
    assert body == {"error": f"method {method} not allowed"}


def test_it_limits_url_and_header_sizes(api: tuple[str, int]) -> None:
    assert request(api, "/health?" + "x" * 3000, AUTH)[::2] == (414, {"error": "URL too long"})
    big = {**AUTH, "X-Padding": "y" * 9000}
    assert request(api, "/health", big)[::2] == (431, {"error": "request headers too large"})


def test_it_answers_a_malformed_request_with_json(api: tuple[str, int]) -> None:
    raw = raw_request(api, b"GET /health extra HTTP/1.1\r\n\r\n")

    head, _, body = raw.partition(b"\r\n\r\n")
    assert head.startswith(b"HTTP/1.0 400")
    assert b"Content-Type: application/json" in head
    assert "error" in json.loads(body)


def test_it_logs_requests_without_the_token(
    api: tuple[str, int], caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO, logger="clients.site")

    request(api, "/datasets?token=" + TOKEN, AUTH)
    request(api, "/health", {"Authorization": "Bearer not-" + TOKEN})

    assert "GET /datasets 200" in caplog.text
    assert "GET /health 401" in caplog.text
    assert TOKEN not in caplog.text


def test_the_supernode_command_uses_this_venv_and_points_at_the_site_config(
    cfg: SiteConfig,
) -> None:
    assert supernode_command(cfg) == [
        str(VENV_BIN / "flower-supernode"),
        "--insecure",
        "--superlink",
        "127.0.0.1:9092",
        "--host",
        "127.0.0.1",
        "--port",
        "9094",
        "--node-config",
        f'site-config="{cfg.path}"',
    ]


def test_the_supernode_runs_in_flowers_environment_and_can_import_the_site_code(
    cfg: SiteConfig,
) -> None:
    env = supernode_env(cfg)
    expected = flower_env(cfg.flwr_home)

    assert env.pop("PYTHONPATH").split(os.pathsep)[0] == str(PROJECT_ROOT)
    expected.pop("PYTHONPATH", None)
    assert env == expected


def test_main_refuses_a_bad_config_before_starting_anything(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    toml = write_site_toml(tmp_path, {}, token="")

    assert main(["--config", str(toml)]) == 2
    assert capsys.readouterr().err == f"error: {toml}: key 'token': must not be empty\n"
    assert not (tmp_path / ".flwr").exists()


def wait_for(condition: Callable[[], bool], seconds: float, what: str) -> None:
    deadline = time.monotonic() + seconds
    while not condition():
        if time.monotonic() > deadline:
            pytest.fail(f"timed out after {seconds:.0f} s waiting for {what}")
        time.sleep(0.5)


def processes() -> Iterator[tuple[int, str, int, int]]:
    """(pid, state, parent pid, process group) of every process, from /proc."""
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rpartition(")")[2].split()
        except OSError:
            continue  # exited while we looked
        yield int(stat.parent.name), fields[0], int(fields[1]), int(fields[2])


def live_group(group: int) -> list[int]:
    """Live pids of a process group (zombies waiting for a reaper do not count)."""
    return [pid for pid, state, _, pgrp in processes() if pgrp == group and state != "Z"]


def supernode_of(site_pid: int) -> int | None:
    """The site's child: the group guard leading the SuperNode's process group."""
    children = [pid for pid, state, ppid, _ in processes() if ppid == site_pid and state != "Z"]
    return children[0] if children else None


def cmdline(pid: int) -> str:
    try:
        return Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ").decode()
    except OSError:
        return ""


def running(group: int, program: str) -> int | None:
    """The pid of `program` (e.g. flower-superexec) in a process group, if any."""
    found = [pid for pid in live_group(group) if f"/{program} " in cmdline(pid)]
    return found[0] if found else None


def supernode_health(address: tuple[str, int]) -> str | None:
    try:
        status, _, body = request(address, "/health", AUTH)
    except OSError:
        return None
    return body["supernode"] if status == 200 else None


def superlink_up(port: int) -> bool:
    try:
        return request(("127.0.0.1", port), "/health")[0] == 200
    except OSError:
        return False


def stop(process: subprocess.Popen[Any]) -> None:
    if process.poll() is None:
        os.killpg(process.pid, signal.SIGTERM)
        try:
            process.wait(10)
        except subprocess.TimeoutExpired:
            os.killpg(process.pid, signal.SIGKILL)
            process.wait()


@contextlib.contextmanager
def superlink_and_site(tmp_path: Path) -> Iterator[tuple[subprocess.Popen[str], tuple[str, int]]]:
    """A real SuperLink and a site (`python -m clients.site`, its own session) whose SuperNode
    has registered and started its superexec; yields the site process and its API address."""
    superlink_port, supernode_port = free_port(), free_port()
    env = flower_env(tmp_path / "superlink-home")
    write_breast_cancer_csv(tmp_path / "good.csv")
    toml = write_site_toml(
        tmp_path,
        {"good": "good.csv"},
        token=TOKEN,
        superlink=f"127.0.0.1:{superlink_port}",
        extra=f"supernode_port = {supernode_port}",
    )
    superlink_command = [
        str(VENV_BIN / "flower-superlink"),
        "--insecure",
        "--host",
        "127.0.0.1",
        "--port",
        str(superlink_port),
        "--disable-runtime-dependency-installation",
        # a file: with ":memory:" the 1.42 SuperLink fails to store pushed messages
        "--database",
        str(tmp_path / "superlink.db"),
    ]
    with (
        (tmp_path / "superlink.log").open("wb") as superlink_log,
        (tmp_path / "site.err").open("wb") as site_err,
    ):
        superlink = subprocess.Popen(
            superlink_command,
            env=env,
            stdout=superlink_log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
        try:
            wait_for(lambda: superlink_up(superlink_port), 60, "the SuperLink")
            site = subprocess.Popen(
                [sys.executable, "-m", "clients.site", "--config", str(toml)],
                cwd=PROJECT_ROOT,
                stdout=subprocess.PIPE,
                stderr=site_err,
                text=True,
                start_new_session=True,
            )
            try:
                assert site.stdout is not None
                api_line, supernode_line = site.stdout.readline(), site.stdout.readline()
                assert api_line.startswith("client API  http://127.0.0.1:")
                assert supernode_line == (
                    f"SuperNode   → SuperLink 127.0.0.1:{superlink_port} "
                    f"(local port {supernode_port})\n"
                )
                address = ("127.0.0.1", int(api_line.rpartition(":")[2]))
                wait_for(lambda: supernode_health(address) == "running", 30, "the SuperNode")
                group = supernode_of(site.pid)
                # The SuperNode runs in its guard's group, where it starts superexec once it
                # has registered with the SuperLink.
                wait_for(lambda: running(group, "flower-superexec"), 60, "the superexec")
                yield site, address
            finally:
                stop(site)
        finally:
            stop(superlink)


def descendants(pid: int) -> set[int]:
    """Every live process under `pid` (children, their children, …)."""
    table = [(child, parent) for child, state, parent, _ in processes() if state != "Z"]
    found, frontier = set(), {pid}
    while frontier:
        frontier = {child for child, parent in table if parent in frontier} - found
        found |= frontier
    return found


def alive(pids: set[int]) -> set[int]:
    return {pid for pid, state, _, _ in processes() if pid in pids and state != "Z"}


@pytest.mark.flower
def test_the_site_runs_restarts_and_finally_stops_its_supernode(tmp_path: Path) -> None:
    with superlink_and_site(tmp_path) as (site, _):
        first = supernode_of(site.pid)
        supernode = running(first, "flower-supernode")
        assert supernode is not None
        os.kill(supernode, signal.SIGKILL)  # a crash: the site restarts it after a back-off
        wait_for(lambda: live_group(first) == [], 10, "the crashed group to be cleaned up")
        wait_for(lambda: supernode_of(site.pid) not in (None, first), 20, "a restart")
        second = supernode_of(site.pid)
        assert second is not None
        wait_for(lambda: running(second, "flower-superexec"), 60, "the new superexec")

        site.send_signal(signal.SIGTERM)

        assert site.wait(30) == 0
        assert live_group(second) == []


@pytest.mark.flower
@pytest.mark.once
def test_it_leaves_no_process_of_its_tree_when_the_site_is_sigkilled(tmp_path: Path) -> None:
    with superlink_and_site(tmp_path) as (site, _):
        tree = descendants(site.pid)
        group = supernode_of(site.pid)
        assert {running(group, "flower-supernode"), running(group, "flower-superexec")} < tree

        os.killpg(site.pid, signal.SIGKILL)  # the site's own group: the SuperNode has another
        site.wait(5)

        # The SuperNode's group guard notices and kills its group: SuperNode, superexec and
        # any ClientApp.
        wait_for(lambda: alive(tree) == set(), 10, f"the site's tree {sorted(alive(tree))}")
