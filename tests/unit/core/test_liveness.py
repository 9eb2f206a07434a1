"""When work owned by a process (a job, an upload) may be taken over by another one."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
from datetime import datetime, timedelta

from vmimage.core.liveness import abandoned, new_worker_id

NOW = datetime(2026, 12, 1, 6, 0, 0)
STALE = timedelta(seconds=40)


def test_own_work_is_never_abandoned():
    me = new_worker_id()
    assert not abandoned(me, me, NOW - timedelta(days=1), NOW, STALE)


def test_another_host_is_judged_by_its_heartbeat():
    other = "elsewhere.example:1234:abcd1234"
    assert not abandoned(other, new_worker_id(), NOW - timedelta(seconds=39), NOW, STALE)
    assert abandoned(other, new_worker_id(), NOW - timedelta(seconds=41), NOW, STALE)
    assert abandoned(other, new_worker_id(), None, NOW, STALE)


def test_on_this_host_a_dead_pid_is_abandoned_at_once_and_a_live_one_is_not():
    done = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"], capture_output=True, text=True)
    dead = f"{socket.gethostname()}:{done.stdout.strip()}:abcd1234"
    assert abandoned(dead, new_worker_id(), NOW, NOW, STALE)
    alive = f"{socket.gethostname()}:{os.getppid()}:abcd1234"
    assert not abandoned(alive, new_worker_id(), NOW, NOW, STALE)


def test_an_earlier_incarnation_of_this_process_is_abandoned():
    earlier = f"{socket.gethostname()}:{os.getpid()}:00000000"
    assert abandoned(earlier, new_worker_id(), NOW, NOW, STALE)
