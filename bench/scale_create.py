"""Metadata create rate through the two-process setup: POST /v2/images by C concurrent clients
through nginx in front of two `vmimage serve` processes on one PostgreSQL database with an
S3 default store (scripts/scale-out.sh on a one-node Swift, scripts/swift-s3.sh). For the
peer, the same clients against one process of the same setup, in the same run.

    .venv/bin/python bench/scale_create.py [--n 2000] [--clients 8] [--postgres ADMIN_URL]
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import tempfile
import uuid
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import urlparse

from _common import ROOT, base_parser, get_token, percentile
from create import concurrent, sequential
from list import fresh_database

sys.path.insert(0, str(ROOT))
from tests.swift import start_swift  # noqa: E402

TARGET = 800.0


@dataclass
class Endpoint:
    port: int


def main() -> None:
    p = base_parser(__doc__)
    p.add_argument("--n", type=int, default=2000)
    p.add_argument("--clients", type=int, default=8)
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
        one_rate, one_lat = concurrent(one, token, args.n, args.clients)
        print(f"  one process (node 1 directly), {args.clients} clients, N={args.n}: {one_rate:.1f}/s "
              f"(p50 {percentile(one_lat, 50) * 1000:.1f} ms, p99 {percentile(one_lat, 99) * 1000:.1f} ms)",
              flush=True)
        two_rate, two_lat = concurrent(lb, token, args.n, args.clients)
        print(f"  two processes behind nginx, {args.clients} clients, N={args.n}: {two_rate:.1f}/s "
              f"(p50 {percentile(two_lat, 50) * 1000:.1f} ms, p99 {percentile(two_lat, 99) * 1000:.1f} ms)")
        print(f"create, PostgreSQL, {args.clients} clients: two processes {two_rate:.1f}/s, one process "
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
