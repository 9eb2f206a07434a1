"""Metadata create rate through the two-process setup: POST /v2/images by C concurrent clients
through nginx in front of two `vmimage serve` processes on one PostgreSQL database with an
S3 default store (scripts/scale-out.sh on a one-node Swift, scripts/swift-s3.sh). For the
peer, the same clients against one process of the same setup, in the same run.

    .venv/bin/python bench/scale_create.py [--clients 8] [--seconds 10] [--client wrk|python]
                                           [--n 2000] [--postgres ADMIN_URL]

The load comes from wrk (Debian package) when it is installed: C connections from a C load
generator for --seconds, so the 2 cores shared by client and server go to the server, not to
Python client threads meeting at the GIL. `--client python` uses C threads of http.client for
--n creates instead (the earlier figures). The CPU the servers (both vmimage processes and
nginx) and the client used during each run is printed with the figure.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import tempfile
import time
import uuid
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import urlparse

import _wrk
from _common import ROOT, base_parser, get_token, percentile, proc_cpu_seconds
from create import concurrent, sequential
from list import fresh_database

sys.path.insert(0, str(ROOT))
from tests.swift import start_swift  # noqa: E402

TARGET = 800.0


def _machine_busy() -> float:
    """CPU-seconds the whole machine was busy (all processes)."""
    with open("/proc/stat") as f:
        parts = [int(x) for x in f.readline().split()[1:]]
    return (sum(parts[:8]) - parts[3] - parts[4]) / os.sysconf("SC_CLK_TCK")


@dataclass
class Endpoint:
    port: int


def main() -> None:
    p = base_parser(__doc__)
    p.add_argument("--n", type=int, default=2000)
    p.add_argument("--clients", type=int, default=8)
    p.add_argument("--seconds", type=float, default=10.0, help="wrk: seconds per run")
    p.add_argument("--client", choices=("wrk", "python"), default="wrk" if _wrk.available() else "python")
    p.add_argument("--postgres", default="postgresql://postgres@127.0.0.1:5432/test", metavar="ADMIN_URL")
    args = p.parse_args()
    work = Path(tempfile.mkdtemp(prefix="vmimage-bench-scale-", dir=args.data_root))
    swift = start_swift(work / "swift")
    url, drop = fresh_database(args.postgres)
    env = {**os.environ, **swift.env, "VMIMAGE_DATABASE_URL": url.replace("postgresql://", "postgresql+psycopg://"),
           "VMIMAGE_ADMIN_PASSWORD": "admin", "VMIMAGE_STORES": f"obj=s3://bench-{uuid.uuid4().hex[:8]}/images",
           "VMIMAGE_PYTHON": sys.executable}
    script = ROOT / "scripts" / "scale-out.sh"
    try:
        out = subprocess.run(["bash", str(script), "start", str(work / "scale")], env=env, capture_output=True,
                             text=True, timeout=300)
        if out.returncode != 0:
            raise RuntimeError(out.stderr)
        urls = dict(line.split("=", 1) for line in out.stdout.splitlines() if "=" in line)
        lb, one = (Endpoint(urlparse(urls[k]).port) for k in ("VMIMAGE_URL", "NODE1_URL"))
        token = get_token(lb)
        sequential(lb, token, 50)                                   # warm-up, both processes
        pids = [int(x) for x in (work / "scale" / "pids").read_text().split()]

        def run(endpoint: Endpoint, label: str) -> float:
            cpu0 = sum(proc_cpu_seconds(pid) for pid in pids)
            machine0 = _machine_busy()
            if args.client == "wrk":
                r = _wrk.create_load(endpoint.port, token, args.clients, args.seconds)
                rate, wall, p50, p99, n = r.rate, r.seconds, r.p50_ms, r.p99_ms, r.requests
            else:
                t0 = time.perf_counter()
                rate, lat = concurrent(endpoint, token, args.n, args.clients)
                wall, n = time.perf_counter() - t0, args.n
                p50, p99 = percentile(lat, 50) * 1000, percentile(lat, 99) * 1000
            server = (sum(proc_cpu_seconds(pid) for pid in pids) - cpu0) / wall
            other = (_machine_busy() - machine0) / wall - server
            print(f"  {label}, {args.clients} clients ({args.client}), {n} creates: {rate:.1f}/s "
                  f"(p50 {p50:.1f} ms, p99 {p99:.1f} ms); CPU (cores): servers+nginx {server:.2f} "
                  f"({server * wall / n * 1000:.2f} ms per create), "
                  f"client, PostgreSQL, Swift and others {other:.2f} of {os.cpu_count()}; load average "
                  f"{os.getloadavg()[0]:.2f}", flush=True)
            return rate

        one_rate = run(one, "one process (node 1 directly)")
        two_rate = run(lb, "two processes behind nginx")
        print(f"create, PostgreSQL, {args.clients} clients ({args.client}): two processes {two_rate:.1f}/s, one process "
              f"{one_rate:.1f}/s; ratio vs target 800/s: {two_rate / TARGET:.2f} (target >= 1.00); "
              f"{os.cpu_count()} CPU cores on this machine")
    finally:
        subprocess.run(["bash", str(script), "stop", str(work / "scale")], env=env, timeout=120)
        swift.stop()
        drop()
        if not args.keep:
            shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
