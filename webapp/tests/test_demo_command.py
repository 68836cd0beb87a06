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


def test_it_runs_the_demo_and_stops_everything_on_ctrl_c(tmp_path):
    web, superlink = free_port(), free_port()
    env = {
        **os.environ,
        "DEBUG": "1",
        "DEMO_PASSWORD": "demo-test-password",
        "FEDTRACK_VAR_DIR": str(tmp_path),
        "FLOWER_SUPERLINK": f"127.0.0.1:{superlink}",
        "DJANGO_SETTINGS_MODULE": "config.settings",
    }
    env.pop("DATABASE_URL", None)
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
    output = []
    try:
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline:
            line = demo.stdout.readline()
            output.append(line)
            if "Logs" in line or not line:
                break
        text = "".join(output)
        assert f"Web app     http://127.0.0.1:{web}/" in text, text
        assert f"SuperLink   127.0.0.1:{superlink}" in text
        for name in ("Hospital Barcelona", "Hospital Madrid", "Hospital Valencia"):
            assert f"Site        {name}: client API http://127.0.0.1:" in text
        assert "Login       demo / demo-test-password" in text
        started = descendants(demo.pid)
        assert len(started) >= 8  # SuperLink (+superexec), 3 × (site + SuperNode), web

        demo.send_signal(signal.SIGINT)
        demo.wait(60)
    finally:
        if demo.poll() is None:
            demo.kill()
    time.sleep(1)
    assert [pid for pid in started if alive(pid)] == []
