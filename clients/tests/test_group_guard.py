"""clients.group_guard: a command's whole process group ends when its starter dies."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

from clients.site import PROJECT_ROOT

GUARD = [sys.executable, "-m", "clients.group_guard"]


def guard_run(*command: str, parent: int | None = None) -> int:
    parent = os.getpid() if parent is None else parent
    return subprocess.run([*GUARD, str(parent), *command], cwd=PROJECT_ROOT, timeout=30).returncode


def alive(pid: int) -> bool:
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rpartition(")")[2].split()[0]
    except OSError:
        return False
    return state != "Z"


def test_it_exits_with_the_commands_exit_code():
    assert guard_run(sys.executable, "-c", "import sys; sys.exit(3)") == 3
    assert guard_run(sys.executable, "-c", "import os; os.kill(os.getpid(), 9)") == 128 + 9
    assert guard_run("/nonexistent/flower-supernode") == 127


def test_it_starts_nothing_when_its_parent_is_already_gone(tmp_path):
    marker = tmp_path / "ran"
    code = guard_run(sys.executable, "-c", f"open({str(marker)!r}, 'w')", parent=1)
    assert code == 1 and not marker.exists()


def group_members(group: int) -> list[int]:
    """Live pids of a process group, from /proc."""
    members = []
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rpartition(")")[2].split()
        except OSError:
            continue
        if fields[0] != "Z" and int(fields[2]) == group:
            members.append(int(stat.parent.name))
    return members


def test_it_kills_its_group_when_the_parent_is_sigkilled(tmp_path):
    # A stand-in for a site: starts the guard in a session of its own (as the site does) over
    # a process with a child of its own, writes the guard's pid, then waits to be killed.
    leader_file = tmp_path / "leader"
    command = "import subprocess; subprocess.Popen(['sleep', '60']).wait()"
    site = (
        "import os, subprocess, sys, time; "
        f"g = subprocess.Popen({GUARD!r} + [str(os.getpid()), sys.executable, '-c', {command!r}],"
        " start_new_session=True); "
        f"open({str(leader_file)!r}, 'w').write(str(g.pid)); time.sleep(60)"
    )
    parent = subprocess.Popen([sys.executable, "-c", site], cwd=PROJECT_ROOT)
    try:
        group: list[int] = []
        deadline = time.monotonic() + 20
        while len(group) < 3 and time.monotonic() < deadline:  # guard, python, sleep
            time.sleep(0.1)
            if leader_file.exists() and leader_file.read_text():
                group = group_members(int(leader_file.read_text()))
        assert len(group) >= 3, group

        parent.send_signal(signal.SIGKILL)
        parent.wait(5)

        deadline = time.monotonic() + 5
        while any(alive(pid) for pid in group) and time.monotonic() < deadline:
            time.sleep(0.1)
        assert [pid for pid in group if alive(pid)] == []
    finally:
        if parent.poll() is None:
            parent.kill()
