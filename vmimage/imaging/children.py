"""Child processes that die with the process that started them.

A job's helpers (qemu-img) must not outlive the serving process: after a `kill -9` the job
is failed and cleaned up at the next start, and a qemu-img still writing into its scratch
directory would race that cleanup. Linux's PR_SET_PDEATHSIG has the kernel send the child
SIGKILL when its parent goes (strictly: the thread that forked it; callers here wait on the
child from that thread, so the thread outlives the child). It survives exec, so it holds
through `prlimit ... qemu-img`. Daemonized QEMU servers, which are meant to outlive a
restart and are re-attached, must not use this.
"""

from __future__ import annotations

import ctypes
import os
import signal
from collections.abc import Callable

PR_SET_PDEATHSIG = 1
_prctl: Callable[..., int] | None
try:
    _prctl = ctypes.CDLL(None, use_errno=True).prctl   # looked up now: nothing to resolve after fork
except (OSError, AttributeError):   # not Linux: no such guarantee
    _prctl = None


def die_with_parent() -> Callable[[], None] | None:
    """A preexec_fn for subprocess: the child gets SIGKILL when this process dies."""
    if _prctl is None:
        return None
    parent = os.getpid()

    def setup() -> None:
        if _prctl(PR_SET_PDEATHSIG, int(signal.SIGKILL), 0, 0, 0) != 0:
            os._exit(126)
        if os.getppid() != parent:    # the parent died between fork and prctl
            os._exit(126)
    return setup
