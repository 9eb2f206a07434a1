"""Images from servers: create a server from a 10 GiB image (instant overlay), then make an
image from the stopped server whose 10 GiB system disk holds 200 MiB of data.

Prints seconds and bytes stored, against the targets: server create <= 1 s; image <= 3 s
and stored bytes <= 1.1 x the data (not the virtual size).

    .venv/bin/python bench/server_image.py [--data-mib 200] [--disk-gib 10]
"""

from __future__ import annotations

import json
import os
import subprocess
import tempfile
import time
import urllib.request
from pathlib import Path

from _common import CpuWatch, Server, base_parser, get_token, maybe_pause

MiB, GiB = 1 << 20, 1 << 30


def call(server: Server, token: str, method: str, path: str, body=None, data: Path | None = None,
         ctype: str = "application/json"):
    payload = json.dumps(body).encode() if body is not None else None
    req = urllib.request.Request(f"{server.base}{path}", method=method, headers={
        "X-Auth-Token": token, "Content-Type": "application/octet-stream" if data else ctype})
    if data is not None:
        req.data = data.open("rb")
        req.add_header("Content-Length", str(data.stat().st_size))
    elif payload is not None:
        req.data = payload
    with urllib.request.urlopen(req, timeout=600) as resp:
        raw = resp.read()
        return json.loads(raw) if raw else None


def make_disk(tmp: Path, data_mib: int, disk_gib: int) -> Path:
    """A qcow2 of disk_gib virtual GiB holding data_mib MiB of random data in 4 places."""
    raw = tmp / "disk.raw"
    with raw.open("wb") as f:
        f.truncate(disk_gib * GiB)
        part = data_mib // 4
        for i in range(4):
            f.seek(i * (disk_gib * GiB // 4))
            for _ in range(part):
                f.write(os.urandom(MiB))
    out = tmp / "disk.qcow2"
    subprocess.run(["qemu-img", "convert", "-f", "raw", "-O", "qcow2", str(raw), str(out)], check=True)
    raw.unlink()
    return out


def main() -> None:
    parser = base_parser(__doc__)
    parser.add_argument("--data-mib", type=int, default=200)
    parser.add_argument("--disk-gib", type=int, default=10)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp, Server(args.data_root, args.keep) as server:
        disk = make_disk(Path(tmp), args.data_mib, args.disk_gib)
        token = get_token(server)
        image = call(server, token, "POST", "/v2/images",
                     {"name": "bench-base", "disk_format": "qcow2", "container_format": "bare"})
        call(server, token, "PUT", f"/v2/images/{image['id']}/file", data=disk)
        maybe_pause(args, server)

        t0 = time.perf_counter()
        created = call(server, token, "POST", "/vmimage/v1/servers", {
            "name": "bench", "image_id": image["id"], "start": False,
            "system_disk": {"size_gb": args.disk_gib, "category": "cloud"}})["server"]
        create_s = time.perf_counter() - t0
        # The system disk is an overlay on the image: the copy flattens it into a standalone qcow2.
        with CpuWatch(server) as watch:
            t0 = time.perf_counter()
            job = call(server, token, "POST", f"/vmimage/v1/servers/{created['id']}/images",
                       {"name": "bench-image"})["job"]
            while job["status"] not in ("SUCCESS", "FAIL"):
                time.sleep(0.02)
                job = call(server, token, "GET", f"/vmimage/v1/jobs/{job['id']}")["job"]
            image_s = time.perf_counter() - t0
        if job["status"] != "SUCCESS":
            raise SystemExit(f"job failed: {job}")
        made = call(server, token, "GET", f"/v2/images/{job['entities']['image_ids'][0]}")
        data = args.data_mib * MiB
        print(f"server create from a {args.disk_gib} GiB image: {create_s:.3f} s (target <= 1 s)")
        print(f"image from the stopped server: {image_s:.2f} s, stored {made['size'] / MiB:.1f} MiB "
              f"= {made['size'] / data:.3f} x the {args.data_mib} MiB of data, virtual "
              f"{made['virtual_size'] / GiB:.0f} GiB [{watch.text()}]")
        print(f"server_image: create {create_s:.3f} s (target <= 1.0), image {image_s:.2f} s (target <= 3.0), "
              f"stored/data {made['size'] / data:.3f} (target <= 1.10)")


if __name__ == "__main__":
    main()
