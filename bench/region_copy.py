"""Cross-region copy of a 1 GiB image between two file stores, against `cp` + `sha512sum`.

A service with two regions (VMIMAGE_REGIONS=RegionOne,RegionTwo), each with its own file
store in the data directory. An image of random bytes is uploaded in RegionOne, then copied
to RegionTwo through Huawei IMS's `cross_region_copy` with the official SDK (huaweicloudsdkims,
in the test extras): the copy job reads the source from RegionOne's store, hashes it (md5 and
sha512, checked against the source's), inspects its format, writes and fdatasyncs it into
RegionTwo's store. The baseline, in the same run, on the same file: `cp` of the source's blob
to another file of the data directory, then `sha512sum` of the copy.
ratio = baseline time / copy time (1.0: as fast as cp + sha512sum). Copy time runs from the
SDK call to the job reading SUCCESS (polled every 20 ms). MB = 10^6 bytes.

    .venv/bin/python bench/region_copy.py [--size-gib 1] [--repeat 3]
"""

from __future__ import annotations

import http.client
import json
import os
import statistics
import subprocess
import time
from pathlib import Path

from _common import HOST, VENV_BIN, Server, base_parser, get_token, maybe_pause

GIB = 1 << 30
MIB = 1 << 20
MB = 1e6
REGIONS = "RegionOne,RegionTwo"


def upload(server: Server, token: str, name: str, size: int) -> str:
    conn = http.client.HTTPConnection(HOST, server.port, timeout=600)
    conn.request("POST", "/v2/images", body=json.dumps({"name": name, "disk_format": "raw",
                                                        "container_format": "bare"}),
                 headers={"X-Auth-Token": token, "Content-Type": "application/json"})
    image_id = json.loads(conn.getresponse().read())["id"]
    conn.putrequest("PUT", f"/v2/images/{image_id}/file")
    for k, v in {"X-Auth-Token": token, "Content-Type": "application/octet-stream",
                 "Content-Length": str(size)}.items():
        conn.putheader(k, v)
    conn.endheaders()
    for _ in range(size // MIB):
        conn.sock.sendall(os.urandom(MIB))
    resp = conn.getresponse()
    resp.read()
    conn.close()
    assert resp.status == 204, resp.status
    return image_id


def admin(server: Server, *args: str) -> str:
    exe = VENV_BIN / "vmimage"
    return subprocess.run([str(exe), "admin", "--data-dir", str(server.data_dir), *args], check=True,
                          capture_output=True, text=True, env=dict(os.environ, VMIMAGE_REGIONS=REGIONS)).stdout


def baseline(source: Path, target: Path) -> float:
    t0 = time.perf_counter()
    subprocess.run(["cp", str(source), str(target)], check=True)
    subprocess.run(["sha512sum", str(target)], check=True, capture_output=True)
    return time.perf_counter() - t0


def main() -> None:
    from huaweicloudsdkcore.auth.credentials import BasicCredentials
    from huaweicloudsdkims.v2 import ImsClient
    from huaweicloudsdkims.v2 import model as m

    p = base_parser(__doc__)
    p.add_argument("--size-gib", type=float, default=1.0)
    p.add_argument("--repeat", type=int, default=3)
    args = p.parse_args()
    size = int(args.size_gib * GIB) // MIB * MIB
    with Server(args.data_root, args.keep, env_for=lambda _d: {"VMIMAGE_REGIONS": REGIONS}) as server:
        token = get_token(server)
        admin(server, "project", "create", "admin-two", "--region", "RegionTwo")
        admin(server, "role", "grant", "--user", "admin", "--project", "admin-two", "--role", "admin")
        key = json.loads(admin(server, "access-key", "create", "--user", "admin"))
        ims = (ImsClient.new_builder()
               .with_credentials(BasicCredentials(key["access_key"], key["secret_key"], key["project_id"]))
               .with_endpoints([server.base]).build())
        maybe_pause(args, server)
        copies, bases = [], []
        for i in range(args.repeat):
            image_id = upload(server, token, f"bench-copy-{i}", size)
            source = server.data_dir / "images" / image_id
            base_target = server.data_dir / "baseline-copy"
            base_s = baseline(source, base_target)
            base_target.unlink()
            body = m.CopyImageCrossRegionRequestBody(name=f"bench-copied-{i}", region="RegionTwo",
                                                     project_name="admin-two", agency_name="bench")
            t0 = time.perf_counter()
            job_id = ims.copy_image_cross_region(m.CopyImageCrossRegionRequest(image_id=image_id, body=body)).job_id
            while True:
                job = ims.show_job(m.ShowJobRequest(job_id=job_id))
                if job.status in ("SUCCESS", "FAIL"):
                    break
                time.sleep(0.02)
            copy_s = time.perf_counter() - t0
            if job.status != "SUCCESS":
                raise SystemExit(f"copy failed: {job.fail_reason}")
            copied = server.data_dir / "images-RegionTwo" / job.entities.image_id
            assert copied.stat().st_size == size
            copies.append(copy_s)
            bases.append(base_s)
            print(f"run {i + 1}: copy {size / copy_s / MB:.1f} MB/s ({copy_s:.2f} s), cp + sha512sum "
                  f"{base_s:.2f} s, ratio {base_s / copy_s:.2f}", flush=True)
            for path in (f"/region/RegionTwo/v2/images/{job.entities.image_id}", f"/v2/images/{image_id}"):
                conn = http.client.HTTPConnection(HOST, server.port, timeout=60)
                conn.request("DELETE", path, headers={"X-Auth-Token": token})
                assert conn.getresponse().status == 204
                conn.close()
        ratios = [b / t for b, t in zip(bases, copies)]
        print(f"cross-region copy of {size / GIB:.2f} GiB between two file stores: median "
              f"{size / statistics.median(copies) / MB:.1f} MB/s; ratio to cp + sha512sum median "
              f"{statistics.median(ratios):.2f} (best {max(ratios):.2f})")


if __name__ == "__main__":
    main()
