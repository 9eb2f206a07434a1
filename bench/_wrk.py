"""A create load from wrk (Debian package `wrk`): C keep-alive connections for a fixed time.

wrk is a C load generator, so the client costs the shared cores far less per request than
Python threads (which also meet at the GIL); the figure is then the server's. Each request is
POST /v2/images with a fresh name. Used by bench/create.py and bench/scale_create.py when wrk
is installed (`--client python` keeps the threaded http.client clients).
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import tempfile
from dataclasses import dataclass

from _common import HOST

_SCRIPT = """
wrk.method = "POST"
wrk.headers["Content-Type"] = "application/json"
wrk.headers["X-Auth-Token"] = "%(token)s"
local n = 0
local tag = tostring(math.random(1, 1000000000))
request = function()
  n = n + 1
  return wrk.format(nil, "/v2/images", nil,
    '{"name": "wrk-' .. tag .. '-' .. n .. '", "disk_format": "raw", "container_format": "bare"}')
end
done = function(summary, latency, requests)
  local e = summary.errors
  io.write(string.format("RESULT %%d %%d %%d %%d %%d\\n", summary.requests, summary.duration,
    e.status + e.connect + e.read + e.write + e.timeout, latency:percentile(50), latency:percentile(99)))
end
"""


@dataclass
class WrkResult:
    requests: int
    seconds: float
    errors: int
    p50_ms: float
    p99_ms: float

    @property
    def rate(self) -> float:
        return self.requests / self.seconds


def available() -> bool:
    return shutil.which("wrk") is not None


def create_load(port: int, token: str, connections: int, seconds: float, threads: int = 2) -> WrkResult:
    with tempfile.TemporaryDirectory(prefix="vmimage-wrk-") as tmp:
        script = os.path.join(tmp, "create.lua")
        with open(os.open(script, os.O_WRONLY | os.O_CREAT, 0o600), "w") as f:
            f.write(_SCRIPT % {"token": token})
        out = subprocess.run(["wrk", "-t", str(min(threads, connections)), "-c", str(connections),
                              "-d", f"{seconds:g}s", "--timeout", "30s", "-s", script, f"http://{HOST}:{port}/"],
                             capture_output=True, text=True, timeout=seconds + 120)
    m = re.search(r"^RESULT (\d+) (\d+) (\d+) (\d+) (\d+)$", out.stdout, re.M)
    if out.returncode != 0 or m is None:
        raise RuntimeError(f"wrk failed: {out.stdout[-500:]} {out.stderr[-500:]}")
    requests, micros, errors, p50, p99 = (int(x) for x in m.groups())
    if errors:
        raise RuntimeError(f"wrk: {errors} of {requests} creates failed")
    return WrkResult(requests, micros / 1e6, errors, p50 / 1000, p99 / 1000)
