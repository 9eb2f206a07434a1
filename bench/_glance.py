"""Upstream Glance as a peer in the same run: start/stop scripts/glance-peer.sh from a benchmark.

Debian's glance-api (installed by scripts/install.sh --test) with a SQLite database and one
file store in a temporary directory, on a free loopback port, without Keystone: requests need
no token (pass token None to the helpers in _common). Its CPU is the whole process group's
(the parent and its forked workers).

    with GlancePeer(args.data_root) as glance:
        glance.port, glance.base, glance.cpu_seconds()
"""

from __future__ import annotations

import os
import shutil
import subprocess
import tempfile
from pathlib import Path

from _common import ROOT, proc_cpu_seconds

SCRIPT = ROOT / "scripts" / "glance-peer.sh"


def available() -> bool:
    return shutil.which("glance-api") is not None and shutil.which("glance-manage") is not None


class GlancePeer:
    def __init__(self, data_root: str | None = None, keep: bool = False) -> None:
        if not available():
            raise RuntimeError("glance-api is not installed: run scripts/install.sh --test "
                               "(or apt-get install glance-api)")
        self.dir = Path(tempfile.mkdtemp(prefix="vmimage-bench-glance-", dir=data_root))
        self.keep = keep
        out = subprocess.run(["bash", str(SCRIPT), "start", str(self.dir)], check=False,
                             capture_output=True, text=True)
        if out.returncode != 0:
            self._cleanup()
            raise RuntimeError(f"glance peer did not start: {out.stderr.strip()}")
        env = dict(line.split("=", 1) for line in out.stdout.splitlines() if "=" in line)
        self.base = env["GLANCE_URL"]
        self.port = int(self.base.rsplit(":", 1)[1])
        self.pid = int((self.dir / "pid").read_text())
        self.images_dir = self.dir / "images"

    def pids(self) -> list[int]:
        """The glance-api parent and its workers (its process group)."""
        found = []
        for entry in os.listdir("/proc"):
            if not entry.isdigit():
                continue
            try:
                with open(f"/proc/{entry}/stat") as f:
                    fields = f.read().rsplit(")", 1)[1].split()
            except OSError:
                continue
            if int(fields[2]) == self.pid:          # pgrp
                found.append(int(entry))
        return found

    def cpu_seconds(self) -> float:
        total = 0.0
        for pid in self.pids():
            try:
                total += proc_cpu_seconds(pid)
            except OSError:         # a worker that just ended
                continue
        return total

    def stop(self) -> None:
        subprocess.run(["bash", str(SCRIPT), "stop", str(self.dir)], check=False)
        self._cleanup()

    def _cleanup(self) -> None:
        if not self.keep:
            shutil.rmtree(self.dir, ignore_errors=True)

    def __enter__(self) -> "GlancePeer":
        return self

    def __exit__(self, *exc) -> None:
        self.stop()
