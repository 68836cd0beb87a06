"""devstack.processes: the demo keeps its federation up, and Flower's own CLI reaches the
platform's SuperLink."""

import os
import signal
import subprocess
import sys
import time

import pytest

from clients.flower_env import VENV_BIN, flower_env
from devstack.processes import (
    CLI_CONNECTION,
    RESTART_BACKOFF_SECONDS,
    STABLE_AFTER_SECONDS,
    LocalFederation,
    free_port,
    write_cli_connection,
)

SLEEPER = [sys.executable, "-c", "import time; time.sleep(120)"]
FIRST, CEILING = RESTART_BACKOFF_SECONDS


@pytest.fixture
def stack(tmp_path):
    federation = LocalFederation(tmp_path)
    yield federation
    federation.stop(grace=2)


def sigkill_group(pid: int) -> None:
    os.killpg(pid, signal.SIGKILL)
    time.sleep(0.2)  # let the kernel make it a zombie, reaped by poll()


def test_it_restarts_a_dead_process_after_a_back_off_and_leaves_the_others(stack):
    site_a = stack._start("Hospital A", "a", SLEEPER, dict(os.environ))
    site_b = stack._start("Hospital B", "b", SLEEPER, dict(os.environ))
    b_pid, first_a = site_b.process.pid, site_a.process.pid
    now = time.monotonic()
    assert stack.keep_alive(now) == []

    sigkill_group(first_a)
    reported = stack.keep_alive(now)
    assert reported == [
        f"Hospital A exited with code -9; restarting in {FIRST:.0f} s (log: {site_a.log_path})"
    ]
    assert stack.keep_alive(now + FIRST - 0.1) == []  # still backing off
    restarted = stack.keep_alive(now + FIRST)
    assert restarted == [f"Hospital A restarted (pid {site_a.process.pid})"]
    assert site_a.process.pid != first_a and site_a.process.poll() is None
    assert site_b.process.pid == b_pid and site_b.process.poll() is None

    # Dying again soon: the delay doubles; after a long healthy run it is short again.
    sigkill_group(site_a.process.pid)
    assert f"restarting in {2 * FIRST:.0f} s" in stack.keep_alive(now + FIRST + 1)[0]
    stack.keep_alive(now + 3 * FIRST + 1)
    sigkill_group(site_a.process.pid)
    later = now + 3 * FIRST + 1 + STABLE_AFTER_SECONDS
    assert f"restarting in {FIRST:.0f} s" in stack.keep_alive(later)[0]
    assert site_b.process.pid == b_pid and site_b.process.poll() is None


def test_it_caps_the_back_off(stack):
    site = stack._start("Hospital A", "a", SLEEPER, dict(os.environ))
    now = time.monotonic()
    delays = []
    for _ in range(8):
        sigkill_group(site.process.pid)
        delays.append(site.delay)
        stack.keep_alive(now)
        now = site.restart_at
        stack.keep_alive(now)
    assert delays == [min(FIRST * 2**i, CEILING) for i in range(8)]


@pytest.mark.flower
@pytest.mark.once
def test_it_lets_flwr_ls_reach_the_platforms_superlink(tmp_path):
    stack = LocalFederation(tmp_path / "state")
    port = free_port()
    try:
        stack.start_superlink(port)
        flwr_home = tmp_path / "flwr"
        write_cli_connection(flwr_home, CLI_CONNECTION, f"127.0.0.1:{port}")

        result = subprocess.run(
            [str(VENV_BIN / "flwr"), "ls", CLI_CONNECTION, "--format", "json"],
            env=flower_env(flwr_home),
            cwd=tmp_path,
            capture_output=True,
            text=True,
            timeout=60,
        )
    finally:
        stack.stop()

    assert result.returncode == 0, result.stdout + result.stderr
    assert '"success": true' in result.stdout, result.stdout
