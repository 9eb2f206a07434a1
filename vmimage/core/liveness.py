"""Whose work is still being done: owner ids of processes, and when their work is abandoned.

Jobs and uploads in flight carry the id of the process doing them ("host:pid:nonce") and a
heartbeat. Work is abandoned when its process is known dead (same host, pid gone, or an
earlier incarnation of this very process) or when its heartbeat is older than stale_after
(another host, or a process that hangs).
"""

from __future__ import annotations

import os
import socket
import uuid
from datetime import datetime, timedelta


def new_worker_id() -> str:
    return f"{socket.gethostname()}:{os.getpid()}:{uuid.uuid4().hex[:8]}"


def pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def known_dead(worker: str | None) -> bool:
    """A process of this host that is gone, or an earlier incarnation of this very process
    (this pid, another id); nothing is known of other hosts' processes."""
    host, _, rest = (worker or "").partition(":")
    pid = rest.partition(":")[0]
    if host != socket.gethostname() or not pid.isdigit():
        return False
    return pid == str(os.getpid()) or not pid_alive(int(pid))


def abandoned(worker: str | None, me: str, beat: datetime | None, now: datetime,
              stale_after: timedelta) -> bool:
    """Whether work owned by `worker`, last heard of at `beat`, may be taken over by `me`."""
    if worker == me:
        return False
    if known_dead(worker):
        return True
    return beat is None or now - beat > stale_after
