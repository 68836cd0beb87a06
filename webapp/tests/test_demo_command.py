"""`manage.py demo` starts the whole federation, prints where it listens, and Ctrl-C stops
every process it started."""

import contextlib
import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest

from webapp.tests.conftest import free_port

pytestmark = pytest.mark.flower

ROOT = Path(__file__).resolve().parents[2]


def free_port_block(count: int) -> int:
    """A port whose next count - 1 ports are free too: the demo numbers its three sites' ports
    up from the one it is given, and a neighbour of a free port can be another connection's
    (a CI run failed on "Address already in use" for the second site)."""
    for _ in range(100):
        base = free_port()
        with contextlib.ExitStack() as held:
            try:
                for port in range(base, base + count):
                    held.enter_context(socket.socket()).bind(("127.0.0.1", port))
            except OSError:
                continue
        return base
    raise RuntimeError(f"no {count} consecutive free ports on 127.0.0.1")


def descendants(pid: int) -> set[int]:
    parents: dict[int, int] = {}
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        parents[int(stat.parent.name)] = int(fields[1])
    found, frontier = set(), {pid}
    while frontier:
        children = {child for child, parent in parents.items() if parent in frontier}
        frontier = children - found
        found |= children
    return found


def alive(pid: int) -> bool:
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except OSError:
        return False
    return state != "Z"


def cmdline(pid: int) -> str:
    try:
        return Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ").decode()
    except OSError:
        return ""


def read_until(stream, marker: str, seconds: float) -> str:
    """Lines of `stream` up to the first containing `marker` (the process must go on writing:
    the demo does, every restart)."""
    lines, deadline = [], time.monotonic() + seconds
    while time.monotonic() < deadline:
        line = stream.readline()
        lines.append(line)
        if marker in line or not line:
            break
    return "".join(lines)


def manage(*args: str, env: dict[str, str]) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, str(ROOT / "manage.py"), *args],
        env=env,
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=60,
    )


@pytest.mark.once
def test_it_runs_the_demo_survives_a_killed_site_and_stops_everything_on_ctrl_c(tmp_path):
    web, superlink = free_port(), free_port()
    env = {
        **os.environ,
        "DEBUG": "1",
        "DEMO_PASSWORD": "demo-test-password",
        "FEDTRACK_VAR_DIR": str(tmp_path),
        "FLOWER_SUPERLINK": f"127.0.0.1:{superlink}",
        "DJANGO_SETTINGS_MODULE": "config.settings",
    }
    for name in ("DATABASE_URL", "SECRET_KEY", "SECRET_KEY_FILE"):
        env.pop(name, None)
    argv = [
        sys.executable,
        str(ROOT / "manage.py"),
        "demo",
        "--port", str(web),
        "--superlink-port", str(superlink),
        "--site-port", str(free_port_block(3)),
        "--supernode-port", str(free_port_block(3)),
    ]  # fmt: skip
    demo = subprocess.Popen(
        argv, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True
    )
    try:
        text = read_until(demo.stdout, " --show", 120)
        assert f"Web app     http://127.0.0.1:{web}/" in text, text
        assert f"SuperLink   127.0.0.1:{superlink}" in text
        for name in ("Hospital Barcelona", "Hospital Madrid", "Hospital Valencia"):
            assert f"Site        {name}: client API http://127.0.0.1:" in text
        assert "Login       demo / demo-test-password" in text
        flwr = f"FLWR_HOME={tmp_path / 'flwr'} {Path(sys.executable).parent / 'flwr'}"
        assert f"Flower CLI  {flwr} ls fedtrack\n" in text
        assert f"{flwr} log RUN_ID fedtrack --show\n" in text
        assert f'address = "127.0.0.1:{superlink}"' in (tmp_path / "flwr/config.toml").read_text()

        # Next to the demo, manage.py needs nothing more: neither DEBUG nor a SECRET_KEY.
        plain = {k: v for k, v in env.items() if k not in ("DEBUG", "DEMO_PASSWORD")}
        token = manage("create_api_token", "demo", env=plain)
        assert token.returncode == 0, token.stderr
        assert len(token.stdout.strip()) >= 32 and token.stderr == ""

        sites = {p: cmdline(p) for p in descendants(demo.pid) if "clients.site" in cmdline(p)}
        assert len(sites) == 3, sites
        valencia = next(pid for pid, line in sites.items() if "hospital-valencia" in line)
        valencia_tree = descendants(valencia) | {valencia}
        others = {pid: descendants(pid) for pid in sites if pid != valencia}
        assert all(len(tree) >= 3 for tree in others.values())  # guard, SuperNode, superexec

        os.killpg(valencia, signal.SIGKILL)  # the site's group; its SuperNode has its own

        text = read_until(demo.stdout, "Hospital Valencia restarted", 30)
        assert "Hospital Valencia exited with code -9; restarting in 2 s" in text, text
        assert "Hospital Valencia restarted (pid " in text, text
        deadline = time.monotonic() + 10
        while any(alive(pid) for pid in valencia_tree) and time.monotonic() < deadline:
            time.sleep(0.2)
        assert [pid for pid in valencia_tree if alive(pid)] == []
        for pid, tree in others.items():  # the other sites and their SuperNodes untouched
            assert all(alive(child) for child in tree | {pid})
        assert demo.poll() is None
        # The restarted site's SuperNode starts: one per site again, none left over.
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            supernodes = [
                p
                for p in descendants(demo.pid)
                if "flower-supernode" in cmdline(p) and "group_guard" not in cmdline(p)
            ]
            if len(supernodes) == 3:
                break
            time.sleep(0.5)
        assert len(supernodes) == 3
        started = descendants(demo.pid)
        assert len(started) >= 8  # SuperLink (+superexec), 3 × (site + SuperNode), web

        demo.send_signal(signal.SIGINT)
        demo.wait(60)
    finally:
        if demo.poll() is None:
            demo.kill()
    time.sleep(1)
    assert [pid for pid in started if alive(pid)] == []
