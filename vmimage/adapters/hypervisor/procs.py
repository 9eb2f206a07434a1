"""Finding and ending daemonized QEMU processes by pid, with a guard against pid reuse.

QEMU runs with -daemonize, so it is not our child: we only know it through its pidfile.
A pid read from a file may since belong to another process, so every check also reads
/proc/<pid>/cmdline and wants a qemu-system binary started for this very server.
"""

from __future__ import annotations

import os
import signal
import time
from pathlib import Path


def read_pid(pidfile: Path) -> int | None:
    try:
        text = pidfile.read_text().strip()
    except OSError:
        return None
    return int(text) if text.isdigit() and int(text) > 1 else None


def _alive(pid: int) -> bool:
    """True unless the pid is gone or a zombie (a daemon's zombie waits for a non-reaping init)."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return False
    state = stat.rsplit(")", 1)[-1].split()[0] if ")" in stat else "?"
    return state not in ("Z", "X")


def is_qemu_for(pid: int, guest_name: str) -> bool:
    """Alive, a qemu-system-* binary, and started with `-name guest=<guest_name>`."""
    if not _alive(pid):
        return False
    try:
        argv = Path(f"/proc/{pid}/cmdline").read_bytes().split(b"\0")
    except OSError:
        return False
    if not argv or not os.path.basename(argv[0]).startswith(b"qemu-system-"):
        return False
    wanted = f"guest={guest_name}".encode()
    return any(a == b"-name" and b == wanted for a, b in zip(argv, argv[1:]))


def reap(pid: int) -> bool:
    """Collect the exit status if the process is our child (or we are its subreaper).

    True when nothing is left for us to wait for: reaped now, or not our child at all.
    """
    try:
        done, _ = os.waitpid(pid, os.WNOHANG)
    except OSError:                       # ChildProcessError: not ours to reap
        return True
    return done == pid


def _settle(pid: int, timeout: float = 1.0) -> None:
    """Reap our child once it really ended: a multithreaded leader shows "Z" before it can be waited for."""
    deadline = time.monotonic() + timeout
    while not reap(pid) and time.monotonic() < deadline:
        time.sleep(0.01)


def wait_gone(pid: int, guest_name: str, timeout: float) -> bool:
    """Wait until the pid no longer is that QEMU; True when it is gone."""
    deadline = time.monotonic() + max(timeout, 0.0)
    delay = 0.02
    while True:
        if not is_qemu_for(pid, guest_name):
            _settle(pid)
            return True
        if time.monotonic() >= deadline:
            return False
        time.sleep(delay)
        delay = min(delay * 2, 0.2)


def kill(pid: int, guest_name: str) -> None:
    """SIGKILL, but only if the pid still is that QEMU."""
    if is_qemu_for(pid, guest_name):
        try:
            os.kill(pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
