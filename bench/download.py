"""Download of a 1 GiB image from a file store, first and repeated, against the page cache.

Upstream Glance is not installable on this machine, so its figure (its bytes come from the
page cache) cannot be measured side by side; the peer here is the physical baseline Glance's
number stands for, in the same run: reading the stored file itself from the page cache in
1 MiB reads (plain Python, no HTTP). The node cache does not fill from a file store (it is
for stores that are not this node's files), so a repeated download reads the same file from
the page cache too. MB = 10^6 bytes.

    .venv/bin/python bench/download.py [--size-gib 1] [--repeat 3]
"""

from __future__ import annotations

import http.client
import json
import os
import statistics
import time

from _common import HOST, CpuWatch, Server, base_parser, get_token

MIB, MB = 1 << 20, 1e6


def upload(server: Server, token: str, size: int) -> str:
    conn = http.client.HTTPConnection(HOST, server.port, timeout=600)
    conn.request("POST", "/v2/images", body=json.dumps({"name": "dl", "disk_format": "raw",
                                                        "container_format": "bare"}),
                 headers={"X-Auth-Token": token, "Content-Type": "application/json"})
    image_id = json.loads(conn.getresponse().read())["id"]
    buf = os.urandom(MIB)
    conn.putrequest("PUT", f"/v2/images/{image_id}/file")
    conn.putheader("X-Auth-Token", token)
    conn.putheader("Content-Type", "application/octet-stream")
    conn.putheader("Content-Length", str(size))
    conn.endheaders()
    for _ in range(size // MIB):
        conn.sock.sendall(buf)
    resp = conn.getresponse()
    resp.read()
    if resp.status != 204:
        raise RuntimeError(f"upload failed: {resp.status}")
    return image_id


def download(server: Server, token: str, image_id: str, size: int) -> float:
    conn = http.client.HTTPConnection(HOST, server.port, timeout=600)
    t0 = time.perf_counter()
    conn.request("GET", f"/v2/images/{image_id}/file", headers={"X-Auth-Token": token})
    resp = conn.getresponse()
    got = 0
    while chunk := resp.read(MIB):
        got += len(chunk)
    elapsed = time.perf_counter() - t0
    if got != size:
        raise RuntimeError(f"got {got} of {size} bytes")
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


def main() -> None:
    p = base_parser(__doc__)
    p.add_argument("--size-gib", type=float, default=1.0)
    p.add_argument("--repeat", type=int, default=3)
    args = p.parse_args()
    size = int(args.size_gib * 1024) * MIB
    with Server(args.data_root, args.keep) as server:
        token = get_token(server)
        image_id = upload(server, token, size)
        path = str(server.data_dir / "images" / image_id)
        with CpuWatch(server) as cpu:
            first = download(server, token, image_id, size)
        print(f"first download (data written with O_DIRECT: from disk) {first:.1f} MB/s; {cpu.text()}", flush=True)
        repeated, baseline = [], []
        for _ in range(args.repeat):
            with CpuWatch(server) as cpu:
                repeated.append(download(server, token, image_id, size))
            baseline.append(page_cache_read(path, size))
            print(f"repeated download {repeated[-1]:.1f} MB/s ({cpu.text()}); page-cache read of the same "
                  f"file {baseline[-1]:.1f} MB/s", flush=True)
        r, b = statistics.median(repeated), statistics.median(baseline)
        print(f"download: first {first:.1f} MB/s, repeated {r:.1f} MB/s vs page-cache read {b:.1f} MB/s: "
              f"ratio {r / b:.2f} (per run {', '.join(f'{x / y:.2f}' for x, y in zip(repeated, baseline))})")


if __name__ == "__main__":
    main()
