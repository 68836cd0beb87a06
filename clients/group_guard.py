"""Runs a command and ends its whole process group when the process that started it dies.

    python -m clients.group_guard PARENT_PID COMMAND [ARG ...]

A site starts its SuperNode through this guard, as the leader of a process group of its own.
The SuperNode's superexec and each ClientApp stay in that group. If the site process dies, by
SIGKILL included, the guard is re-parented: it notices within POLL_SECONDS and SIGKILLs the
group. A parent-death signal alone (prctl) would reach only the SuperNode: Flower's own
processes under it follow their parent by polling too, but a ClientApp mid-round first tries
to report to the dead SuperNode and was seen alive more than 10 s later.

The guard exits with the command's exit code (128 + N when signal N ended it), so whoever
supervises it sees what the command did. Stopping the group (SIGTERM to it) stops the guard
along with everything else.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from collections.abc import Sequence

POLL_SECONDS = 0.2


def guard(parent_pid: int, command: Sequence[str]) -> int:
    if os.getppid() != parent_pid:  # the parent died before we got here
        return 1
    try:
        child = subprocess.Popen(command)  # stays in our process group
    except OSError as e:
        print(f"error: cannot start {command[0]}: {e}", file=sys.stderr)
        return 127
    while True:
        try:
            code = child.wait(POLL_SECONDS)
        except subprocess.TimeoutExpired:
            if os.getppid() != parent_pid:
                os.killpg(0, signal.SIGKILL)  # ourselves included: nothing is left behind
            continue
        return code if code >= 0 else 128 - code


def main(argv: Sequence[str] | None = None) -> int:
    args = list(sys.argv[1:] if argv is None else argv)
    if len(args) < 2 or not args[0].isdigit():
        print("usage: python -m clients.group_guard PARENT_PID COMMAND [ARG ...]", file=sys.stderr)
        return 2
    return guard(int(args[0]), args[1:])


if __name__ == "__main__":
    sys.exit(main())
