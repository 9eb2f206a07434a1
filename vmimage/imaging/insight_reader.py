"""The guest reader of image insight: imaging/guest_reader.py in a child process of its own.

The child is a fresh interpreter (`python -I -S`: no site, standard library only) with CPU
seconds and address space capped (setrlimit, as prlimit would), no core files, a wall-clock
deadline, niced below the service, killed with the service (PR_SET_PDEATHSIG). A hostile image can make it fail, never the service.
"""

from __future__ import annotations

import json
import os
import resource
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

from vmimage.core.errors import InspectionFailed
from vmimage.imaging.children import die_with_parent

READER = Path(__file__).with_name("guest_reader.py")
READABLE_FORMATS = ("raw", "qcow2")


class ChildGuestReader:
    """Limits set in the forked child before exec (what `prlimit` and `nice` would do, without
    three more programs started per inspection: the side lane is meant to cost little)."""

    def __init__(self, cpu_seconds: int = 30, memory_bytes: int = 512 << 20, wall_seconds: float = 60) -> None:
        self.cpu_seconds, self.memory_bytes, self.wall_seconds = cpu_seconds, memory_bytes, wall_seconds

    def read(self, path: str, disk_format: str) -> dict[str, Any]:
        if disk_format not in READABLE_FORMATS:
            raise InspectionFailed(f"the reader reads raw and qcow2 disks, not {disk_format}")
        cmd = [sys.executable, "-I", "-S", str(READER), path, disk_format]
        try:
            done = subprocess.run(cmd, capture_output=True, timeout=self.wall_seconds, preexec_fn=self._limits(),
                                  stdin=subprocess.DEVNULL)
        except subprocess.TimeoutExpired as exc:
            raise InspectionFailed(f"reading took longer than {self.wall_seconds:g} s") from exc
        except OSError as exc:
            raise InspectionFailed(f"the reader could not start: {exc}") from exc
        if done.returncode != 0:
            if done.returncode < 0:
                why = f"the reader was killed by signal {-done.returncode} (a resource limit)"
            else:
                why = f"the reader failed: {done.stderr.decode('utf-8', 'replace').strip()[-300:]}"
            raise InspectionFailed(why)
        try:
            facts = json.loads(done.stdout)
        except ValueError as exc:
            raise InspectionFailed("the reader's answer was not JSON") from exc
        if not isinstance(facts, dict):
            raise InspectionFailed("the reader's answer was not an object")
        if "error" in facts:
            raise InspectionFailed(str(facts["error"])[:500])
        return facts

    def _limits(self) -> Callable[[], None]:
        cpu, memory = self.cpu_seconds, self.memory_bytes
        die = die_with_parent()

        def setup() -> None:
            if die is not None:
                die()
            resource.setrlimit(resource.RLIMIT_CPU, (cpu, cpu))
            resource.setrlimit(resource.RLIMIT_AS, (memory, memory))
            resource.setrlimit(resource.RLIMIT_CORE, (0, 0))
            os.nice(10)       # the service's own requests come first
        return setup
