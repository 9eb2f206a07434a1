"""Interoperable import: stage 1 GiB, then glance-direct it into two file stores.

What the import job does with the staged file — read it, md5 + sha512 + format inspection,
write and fdatasync it into the first store, then copy it into the second store and
fdatasync — is measured against a baseline doing exactly that work in this process with
plain Python in the same run (read in 4 MiB blocks, hashlib, os.write, fdatasync).
ratio = baseline time / import time (1.0: the job costs nothing beyond the work itself).
Import time runs from the POST /import call to the image reading `active` (polled every
20 ms). MB = 10^6 bytes.

    .venv/bin/python bench/import.py [--size-gib 1] [--repeat 3]
"""

from __future__ import annotations

import hashlib
import http.client
import json
import os
import statistics
import time
from pathlib import Path

from _common import HOST, Server, base_parser, get_token, maybe_pause

GIB = 1 << 30
MIB = 1 << 20
MB = 1e6


def request(server: Server, token: str, method: str, path: str, body=None, headers=None) -> tuple[int, bytes]:
    conn = http.client.HTTPConnection(HOST, server.port, timeout=600)
    hdrs = {"X-Auth-Token": token, **(headers or {})}
    if isinstance(body, (dict, list)):
        body, hdrs["Content-Type"] = json.dumps(body).encode(), "application/json"
    conn.request(method, path, body=body, headers=hdrs)
    resp = conn.getresponse()
    data = resp.read()
    conn.close()
    return resp.status, data


def stage(server: Server, token: str, image_id: str, size: int) -> float:
    buf = os.urandom(MIB)
    conn = http.client.HTTPConnection(HOST, server.port, timeout=600)
    t0 = time.perf_counter()
    conn.putrequest("PUT", f"/v2/images/{image_id}/stage")
    for k, v in {"X-Auth-Token": token, "Content-Type": "application/octet-stream",
                 "Content-Length": str(size)}.items():
        conn.putheader(k, v)
    conn.endheaders()
    for _ in range(size // MIB):
        conn.sock.sendall(buf)
    resp = conn.getresponse()
    resp.read()
    conn.close()
    assert resp.status == 204, resp.status
    return time.perf_counter() - t0


def baseline(source: Path, target_a: Path, target_b: Path) -> float:
    """The job's work done directly: one hashing pass writing store A, then a copy to B."""
    t0 = time.perf_counter()
    md5, sha = hashlib.md5(usedforsecurity=False), hashlib.sha512()
    with open(source, "rb", buffering=0) as src:
        fd = os.open(target_a, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o640)
        while chunk := src.read(4 * MIB):
            md5.update(chunk)
            sha.update(chunk)
            os.write(fd, chunk)
        os.fdatasync(fd)
        os.close(fd)
    with open(target_a, "rb", buffering=0) as src:
        fd = os.open(target_b, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o640)
        while chunk := src.read(4 * MIB):
            os.write(fd, chunk)
        os.fdatasync(fd)
        os.close(fd)
    return time.perf_counter() - t0


def main() -> None:
    p = base_parser(__doc__)
    p.add_argument("--size-gib", type=float, default=1.0)
    p.add_argument("--repeat", type=int, default=3)
    args = p.parse_args()
    size = int(args.size_gib * GIB) // MIB * MIB
    stores = lambda d: {"VMIMAGE_STORES": f"a=file:{d}/store-a,b=file:{d}/store-b"}  # noqa: E731
    with Server(args.data_root, args.keep, env_for=stores) as server:
        token = get_token(server)
        maybe_pause(args, server)
        imports, bases = [], []
        for i in range(args.repeat):
            status, body = request(server, token, "POST", "/v2/images",
                                   {"name": f"bench-import-{i}", "disk_format": "raw", "container_format": "bare"})
            image_id = json.loads(body)["id"]
            stage_s = stage(server, token, image_id, size)
            staged = server.data_dir / "store-a" / f"staging-{image_id}"
            base_s = baseline(staged, server.data_dir / "base-a", server.data_dir / "base-b")
            for leftover in ("base-a", "base-b"):
                (server.data_dir / leftover).unlink()
            t0 = time.perf_counter()
            status, _ = request(server, token, "POST", f"/v2/images/{image_id}/import",
                                {"method": {"name": "glance-direct"}, "all_stores": True})
            assert status == 202, status
            while True:
                status, body = request(server, token, "GET", f"/v2/images/{image_id}")
                image = json.loads(body)
                if image["status"] == "active":
                    break
                if image.get("os_glance_failed_import"):
                    raise SystemExit(f"import failed: {image}")
                time.sleep(0.02)
            import_s = time.perf_counter() - t0
            assert image["stores"] == "a,b"
            imports.append(import_s)
            bases.append(base_s)
            print(f"run {i + 1}: stage {size / stage_s / MB:.1f} MB/s, import {size / import_s / MB:.1f} MB/s "
                  f"({import_s:.2f} s), baseline {base_s:.2f} s, ratio {base_s / import_s:.2f}", flush=True)
            request(server, token, "DELETE", f"/v2/images/{image_id}")
        ratios = [b / t for b, t in zip(bases, imports)]
        print(f"import of {size / GIB:.2f} GiB into 2 stores: median {size / statistics.median(imports) / MB:.1f} MB/s; "
              f"ratio to the baseline median {statistics.median(ratios):.2f} (best {max(ratios):.2f})")


if __name__ == "__main__":
    main()
