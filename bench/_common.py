"""Shared helpers for the benchmark scripts: start/stop a server, get a token, statistics.

Every script starts its own `vmimage serve` on a free loopback port with a fresh temporary
data directory and stops it (by PID) at the end. VMIMAGE_BENCH_SERVER, when set, replaces
the `vmimage` command (e.g. to benchmark another checkout for a before/after comparison).
Only the standard library is used, so the scripts run with the project's virtualenv:
`.venv/bin/python bench/<name>.py`.
"""

from __future__ import annotations

import http.client
import json
import math
import os
import shlex
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
VENV_BIN = Path(sys.executable).parent
HOST = "127.0.0.1"
PASSWORD = "admin"

AUTH_BODY = {"auth": {
    "identity": {"methods": ["password"],
                 "password": {"user": {"name": "admin", "password": PASSWORD, "domain": {"id": "default"}}}},
    "scope": {"project": {"name": "admin", "domain": {"id": "default"}}}}}


def free_port() -> int:
    with socket.socket() as s:
        s.bind((HOST, 0))
        return s.getsockname()[1]


class Server:
    """A `vmimage serve` child process with its own data directory."""

    def __init__(self, data_root: str | None = None, keep: bool = False,
                 env_for: "Callable[[Path], dict[str, str]] | None" = None, command: str | None = None) -> None:
        self.data_dir = Path(tempfile.mkdtemp(prefix="vmimage-bench-", dir=data_root))
        self.port = free_port()
        self.base = f"http://{HOST}:{self.port}"
        self.keep = keep
        self.log = open(self.data_dir / "server.log", "wb")
        exe = VENV_BIN / "vmimage"
        cmd = [str(exe)] if exe.exists() else [sys.executable, "-m", "vmimage.cli.main"]
        command = command or os.environ.get("VMIMAGE_BENCH_SERVER")
        if command:      # e.g. another build, for before/after runs
            cmd = shlex.split(command)
        env = dict(os.environ, VMIMAGE_ADMIN_PASSWORD=PASSWORD)
        if env_for is not None:     # settings that name paths inside the data directory
            env.update(env_for(self.data_dir))
        self.proc = subprocess.Popen(cmd + ["serve", "--data-dir", str(self.data_dir),
                                            "--host", HOST, "--port", str(self.port)],
                                     stdout=self.log, stderr=subprocess.STDOUT, env=env)
        self.pid = self.proc.pid
        self._wait_ready()

    def _wait_ready(self, timeout: float = 60.0) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"server exited with {self.proc.returncode}; see {self.log.name}")
            try:
                conn = http.client.HTTPConnection(HOST, self.port, timeout=2)
                conn.request("GET", "/versions")
                conn.getresponse().read()
                conn.close()
                return
            except OSError:
                time.sleep(0.1)
        self.stop()
        raise RuntimeError("server did not become ready")

    def cpu_seconds(self) -> float:
        """CPU the server has used so far (all its threads), seconds."""
        return proc_cpu_seconds(self.pid)

    def rss_kb(self) -> int:
        """The server's current resident set (VmRSS, kB)."""
        with open(f"/proc/{self.pid}/status") as f:
            for line in f:
                if line.startswith("VmRSS:"):
                    return int(line.split()[1])
        return 0

    def stop(self) -> None:
        if self.proc.poll() is None:
            os.kill(self.pid, signal.SIGTERM)
            try:
                self.proc.wait(timeout=15)
            except subprocess.TimeoutExpired:
                os.kill(self.pid, signal.SIGKILL)
                self.proc.wait()
        self.log.close()
        if not self.keep:
            shutil.rmtree(self.data_dir, ignore_errors=True)

    def __enter__(self) -> "Server":
        return self

    def __exit__(self, *exc) -> None:
        self.stop()


CLK_TCK = os.sysconf("SC_CLK_TCK")


def proc_cpu_seconds(pid: int) -> float:
    """utime + stime of a process (all its threads), in seconds."""
    with open(f"/proc/{pid}/stat") as f:
        fields = f.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / CLK_TCK


def _machine_busy_seconds() -> float:
    with open("/proc/stat") as f:
        parts = [int(x) for x in f.readline().split()[1:]]
    idle = parts[3] + parts[4]                     # idle + iowait
    return (sum(parts[:8]) - idle) / CLK_TCK       # user..steal


class CpuWatch:
    """CPU used by the server, by this (client) process, and by everything else on the machine.

    The "other" figure shows when something outside the benchmark competed for the cores.
    `server` is anything with `cpu_seconds()`: a Server, or the Glance peer (bench/_glance.py).
    """

    def __init__(self, server) -> None:
        self.server = server

    def __enter__(self) -> "CpuWatch":
        self._t0 = time.perf_counter()
        self._m0 = _machine_busy_seconds()
        self._s0 = self.server.cpu_seconds()
        self._c0 = proc_cpu_seconds(os.getpid())
        return self

    def __exit__(self, *exc) -> None:
        self.wall = time.perf_counter() - self._t0
        self.machine = _machine_busy_seconds() - self._m0
        self.server_cpu = self.server.cpu_seconds() - self._s0
        self.client_cpu = proc_cpu_seconds(os.getpid()) - self._c0
        self.other = max(0.0, self.machine - self.server_cpu - self.client_cpu)

    def text(self) -> str:
        w = self.wall or 1e-9
        return (f"CPU (cores): server {self.server_cpu / w:.2f}, client {self.client_cpu / w:.2f}, "
                f"other processes {self.other / w:.2f} of {os.cpu_count()}")


def auth_headers(token: str | None) -> dict[str, str]:
    """The token header for vmimage; none for the Glance peer (token None: no Keystone there)."""
    return {"X-Auth-Token": token} if token else {}


def get_token(server: Server) -> str:
    conn = http.client.HTTPConnection(HOST, server.port, timeout=30)
    conn.request("POST", "/identity/v3/auth/tokens", body=json.dumps(AUTH_BODY),
                 headers={"Content-Type": "application/json"})
    resp = conn.getresponse()
    resp.read()
    conn.close()
    if resp.status != 201:
        raise RuntimeError(f"token request failed: {resp.status}")
    return resp.getheader("X-Subject-Token")


def populate(server, token: str | None, total: int, clients: int = 8) -> float:
    """Create `total` images through the API with `clients` concurrent connections; seconds taken.

    `server`: a Server, or the Glance peer (bench/_glance.py) with token None (no Keystone)."""
    per = [total // clients + (1 if i < total % clients else 0) for i in range(clients)]
    errors: list[BaseException] = []

    def run(k: int) -> None:
        try:
            conn = http.client.HTTPConnection(HOST, server.port, timeout=60)
            headers = {"Content-Type": "application/json", **auth_headers(token)}
            for i in range(per[k]):
                body = json.dumps({"name": f"img-{k}-{i}", "disk_format": "raw",
                                   "container_format": "bare"})
                conn.request("POST", "/v2/images", body=body, headers=headers)
                resp = conn.getresponse()
                resp.read()
                if resp.status != 201:
                    raise RuntimeError(f"create failed: {resp.status}")
            conn.close()
        except BaseException as exc:  # noqa: BLE001
            errors.append(exc)

    t0 = time.perf_counter()
    threads = [threading.Thread(target=run, args=(k,)) for k in range(clients)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    if errors:
        raise errors[0]
    return time.perf_counter() - t0


def percentile(values: list[float], p: float) -> float:
    """Nearest-rank percentile (p in 0..100)."""
    if not values:
        return float("nan")
    s = sorted(values)
    k = max(0, min(len(s) - 1, math.ceil(p / 100.0 * len(s)) - 1))
    return s[k]


def summary_ms(latencies_s: list[float]) -> str:
    ms = [x * 1000 for x in latencies_s]
    return (f"mean {statistics.fmean(ms):.2f} ms, p50 {percentile(ms, 50):.2f} ms, "
            f"p99 {percentile(ms, 99):.2f} ms")


def base_parser(description: str):
    import argparse
    p = argparse.ArgumentParser(description=description)
    p.add_argument("--data-root", default=None,
                   help="parent directory of the temporary data directory (default: system temp)")
    p.add_argument("--keep", action="store_true", help="keep the data directory afterwards")
    p.add_argument("--pause", action="store_true",
                   help="print the server PID and wait for Enter before measuring (to attach py-spy)")
    return p


def maybe_pause(args, server: Server) -> None:
    if args.pause:
        print(f"server PID {server.pid}; press Enter to start", flush=True)
        sys.stdin.readline()
