"""Download of a 1 GiB image from a file store, vmimage and upstream Glance side by side in the
same run.

Both servers run on this machine at once: `vmimage serve` with its default file store, and
Debian's glance-api with one file store and SQLite (scripts/glance-peer.sh, no Keystone). The
same 1 GiB of random bytes is uploaded to each, then each image is downloaded once (first) and
then --repeat times more, vmimage and Glance alternating (which goes first swaps every round),
so both see the same machine load. Each download reports MB/s (10^6 bytes per second, to the
last byte) and the CPU-seconds per GiB of that server's processes (Glance: its parent and
workers). The figure is the ratio of the medians of the repeated downloads, vmimage / Glance
(target >= 1.3), and for the first download right after the upload, vmimage / Glance (target
>= 1.0). A plain Python read of vmimage's stored file (1 MiB reads, no HTTP) is printed as the
machine's ceiling. With --baseline CMD (another build's `vmimage`, as in bench/upload.py) a
third server of that build takes part the same way.

    .venv/bin/python bench/download.py [--size-gib 1] [--repeat 5] [--baseline CMD]
"""

from __future__ import annotations

import http.client
import json
import contextlib
import os
import statistics
import time

from _common import HOST, CpuWatch, Server, auth_headers, base_parser, get_token
from _glance import GlancePeer

MIB, MB, GIB = 1 << 20, 1e6, 1 << 30
TARGET, FIRST_TARGET = 1.3, 1.0


def upload(port: int, token: str | None, size: int, buf: bytes) -> str:
    conn = http.client.HTTPConnection(HOST, port, timeout=600)
    conn.request("POST", "/v2/images", body=json.dumps({"name": "dl", "disk_format": "raw",
                                                        "container_format": "bare"}),
                 headers={"Content-Type": "application/json", **auth_headers(token)})
    resp = conn.getresponse()
    body = resp.read()
    if resp.status != 201:
        raise RuntimeError(f"create failed: {resp.status} {body[:300]!r}")
    image_id = json.loads(body)["id"]
    conn.putrequest("PUT", f"/v2/images/{image_id}/file")
    for k, v in auth_headers(token).items():
        conn.putheader(k, v)
    conn.putheader("Content-Type", "application/octet-stream")
    conn.putheader("Content-Length", str(size))
    conn.endheaders()
    for _ in range(size // MIB):
        conn.sock.sendall(buf)
    resp = conn.getresponse()
    resp.read()
    conn.close()
    if resp.status != 204:
        raise RuntimeError(f"upload failed: {resp.status}")
    return image_id


def download(port: int, token: str | None, image_id: str, size: int) -> float:
    conn = http.client.HTTPConnection(HOST, port, timeout=600)
    t0 = time.perf_counter()
    conn.request("GET", f"/v2/images/{image_id}/file", headers=auth_headers(token))
    resp = conn.getresponse()
    got = 0
    while chunk := resp.read(MIB):
        got += len(chunk)
    elapsed = time.perf_counter() - t0
    conn.close()
    if resp.status != 200 or got != size:
        raise RuntimeError(f"download: status {resp.status}, got {got} of {size} bytes")
    return size / elapsed / MB


def page_cache_read(path: str, size: int) -> float:
    t0 = time.perf_counter()
    got = 0
    with open(path, "rb", buffering=0) as f:
        while chunk := f.read(MIB):
            got += len(chunk)
    if got != size:
        raise RuntimeError(f"read {got} of {size} bytes")
    return size / (time.perf_counter() - t0) / MB


def minor_faults(pids: list[int]) -> int:
    """Page faults served without I/O so far (e.g. freshly mapped buffers touched), summed."""
    total = 0
    for pid in pids:
        try:
            with open(f"/proc/{pid}/stat") as f:
                total += int(f.read().rsplit(")", 1)[1].split()[7])
        except OSError:
            pass
    return total


class Side:
    """One server under test: where it listens, how to authenticate, its figures."""

    def __init__(self, name: str, server, token: str | None, pids) -> None:
        self.name, self.server, self.token, self.pids = name, server, token, pids
        self.image_id = ""
        self.first = 0.0
        self.first_cpu = 0.0
        self.rates: list[float] = []
        self.faults = 0.0                  # minor page faults per GiB, last download
        self.cpus: list[float] = []        # CPU-seconds per GiB

    def measure(self, size: int) -> tuple[float, float, CpuWatch]:
        f0 = minor_faults(self.pids())
        with CpuWatch(self.server) as cpu:
            rate = download(self.server.port, self.token, self.image_id, size)
        self.faults = (minor_faults(self.pids()) - f0) / (size / GIB)
        return rate, cpu.server_cpu / (size / GIB), cpu


def main() -> None:
    p = base_parser(__doc__)
    p.add_argument("--size-gib", type=float, default=1.0)
    p.add_argument("--repeat", type=int, default=5)
    p.add_argument("--baseline", default=None, help="command of another build to compare with, side by side")
    args = p.parse_args()
    size = int(args.size_gib * 1024) * MIB
    buf = os.urandom(MIB)
    print(f"load average before: {' '.join(f'{x:.2f}' for x in os.getloadavg())}", flush=True)
    with contextlib.ExitStack() as stack:
        server = stack.enter_context(Server(args.data_root, args.keep))
        glance = stack.enter_context(GlancePeer(args.data_root, args.keep))
        vm = Side("vmimage", server, get_token(server), lambda: [server.pid])
        gl = Side("Glance", glance, None, glance.pids)
        sides = [vm, gl]
        if args.baseline:
            base = stack.enter_context(Server(args.data_root, args.keep, command=args.baseline))
            sides.append(Side("baseline", base, get_token(base), lambda: [base.pid]))
        print(f"vmimage PID {server.pid} port {server.port}; Glance (glance-api) PIDs "
              f"{glance.pids()} port {glance.port}", flush=True)
        for side in sides:     # the first download right after the upload, as a compute node would
            t0 = time.perf_counter()
            side.image_id = upload(side.server.port, side.token, size, buf)
            print(f"  {side.name}: uploaded {size / MB:.0f} MB in {time.perf_counter() - t0:.1f} s", flush=True)
            side.first, side.first_cpu, cpu = side.measure(size)
            print(f"  {side.name} first download {side.first:.1f} MB/s, {side.first_cpu:.2f} CPU-s/GiB, "
                  f"{side.faults:.0f} page faults/GiB; {cpu.text()}", flush=True)
        path = str(server.data_dir / "images" / vm.image_id)
        baseline = []
        for k in range(args.repeat):
            for side in (sides if k % 2 == 0 else sides[::-1]):
                rate, per_gib, cpu = side.measure(size)
                side.rates.append(rate)
                side.cpus.append(per_gib)
                print(f"  round {k + 1}: {side.name} {rate:.1f} MB/s, {per_gib:.2f} CPU-s/GiB, "
                      f"{side.faults:.0f} page faults/GiB; {cpu.text()}", flush=True)
            baseline.append(page_cache_read(path, size))
    print(f"load average after: {' '.join(f'{x:.2f}' for x in os.getloadavg())}")
    for side in sides:
        print(f"{side.name}: first {side.first:.1f} MB/s ({side.first_cpu:.2f} CPU-s/GiB), repeated median "
              f"{statistics.median(side.rates):.1f} MB/s ({min(side.rates):.1f}-{max(side.rates):.1f}), "
              f"{statistics.median(side.cpus):.2f} CPU-s/GiB ({min(side.cpus):.2f}-{max(side.cpus):.2f})")
    r_vm, r_gl = statistics.median(vm.rates), statistics.median(gl.rates)
    per_round = ", ".join(f"{a / b:.2f}" for a, b in zip(vm.rates, gl.rates))
    print(f"plain Python read of vmimage's stored file (page cache, no HTTP): median "
          f"{statistics.median(baseline):.1f} MB/s")
    print(f"download, repeated, median of {args.repeat}: vmimage {r_vm:.1f} MB/s vs Glance {r_gl:.1f} MB/s: "
          f"ratio {r_vm / r_gl:.2f} (per round {per_round}; target >= {TARGET})")
    print(f"download, first right after the uploads: vmimage {vm.first:.1f} MB/s vs Glance {gl.first:.1f} MB/s: "
          f"ratio {vm.first / gl.first:.2f} (target >= {FIRST_TARGET})")


if __name__ == "__main__":
    main()
