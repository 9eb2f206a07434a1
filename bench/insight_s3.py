"""Image insight of an image in S3 (read by ranges) against the same image in a file store (read
directly, the baseline): seconds from the request to the report, bytes the reader read, bytes
fetched from the store.

The real Debian 12 of bench/insight.py (debootstrap: kernel, GRUB, cloud-init, openssh-server;
a 2 GiB GPT qcow2, built by tests/guest_images.py and cached) is uploaded once to a file store
and once to an S3 store (a one-node Swift with s3api on loopback, scripts/swift-s3.sh), both on
one server; each is then inspected --repeat times (POST .../insight, polled every 20 ms until
the report). Printed: medians, and the S3/file ratios.

    .venv/bin/python bench/insight_s3.py [--repeat 5]
"""

from __future__ import annotations

import http.client
import json
import shutil
import statistics
import sys
import tempfile
import time
import uuid
from pathlib import Path

from _common import HOST, ROOT, Server, base_parser, get_token

sys.path.insert(0, str(ROOT))
from tests.guest_images import debian_disk  # noqa: E402
from tests.swift import start_swift  # noqa: E402

MIB = 1 << 20


def call(server: Server, token: str, method: str, path: str, body=None, headers=None) -> tuple[int, bytes]:
    conn = http.client.HTTPConnection(HOST, server.port, timeout=600)
    hdrs = {"X-Auth-Token": token, **(headers or {})}
    if isinstance(body, dict):
        body, hdrs["Content-Type"] = json.dumps(body), "application/json"
    conn.request(method, path, body=body, headers=hdrs)
    resp = conn.getresponse()
    data = resp.read()
    conn.close()
    return resp.status, data


def wait_report(server: Server, token: str, image_id: str, job_id: str | None = None) -> dict:
    while True:
        status, data = call(server, token, "GET", f"/vmimage/v1/images/{image_id}/insight")
        assert status == 200, data
        found = json.loads(data)["insight"]
        if found["status"] in ("done", "failed") and (job_id is None or found["job_id"] == job_id):
            return found
        time.sleep(0.02)


def inspect_times(server: Server, token: str, image_id: str, repeat: int) -> tuple[list[float], dict]:
    times, found = [], {}
    for _ in range(repeat):
        t0 = time.perf_counter()
        status, data = call(server, token, "POST", f"/vmimage/v1/images/{image_id}/insight")
        assert status == 202, data
        found = wait_report(server, token, image_id, json.loads(data)["job"]["id"])
        times.append(time.perf_counter() - t0)
        assert found["status"] == "done", found
    return times, found


def main() -> None:
    p = base_parser(__doc__.splitlines()[0])
    p.add_argument("--repeat", type=int, default=5)
    args = p.parse_args()
    debian = debian_disk(full=True)
    allocated = debian.stat().st_size
    swift = start_swift(Path(tempfile.mkdtemp(prefix="vmimage-bench-swift-", dir=args.data_root)))
    try:
        bucket = f"bench-{uuid.uuid4().hex[:8]}"
        swift.client().create_bucket(Bucket=bucket)

        def env_for(data_dir: Path) -> dict[str, str]:
            return {**swift.env, "VMIMAGE_STORES": f"obj=s3://{bucket}/images,local=file:{data_dir}/local",
                    "VMIMAGE_CACHE_ENABLED": "false"}
        with Server(args.data_root, args.keep, env_for=env_for) as server:
            token = get_token(server)
            ids = {}
            for store in ("local", "obj"):
                image_id = upload_to(server, token, debian, store)
                wait_report(server, token, image_id)        # the first inspection, on becoming active
                ids[store] = image_id
            results = {store: inspect_times(server, token, image_id, args.repeat) for store, image_id in ids.items()}
    finally:
        swift.stop()
        if not args.keep:
            shutil.rmtree(swift.dir, ignore_errors=True)
    (file_times, in_file), (s3_times, in_s3) = results["local"], results["obj"]
    same = {k: v for k, v in in_s3["report"].items() if k not in ("read_from", "bytes_fetched")} == \
        {k: v for k, v in in_file["report"].items() if k not in ("read_from", "bytes_fetched")}
    print(f"Debian image {debian.name}: {allocated / MIB:.0f} MiB allocated, 2048 MiB virtual; "
          f"the same report from both stores: {same}")
    read, fetched = in_s3["report"]["bytes_read"], in_s3["report"]["bytes_fetched"]
    file_s, s3_s = statistics.median(file_times), statistics.median(s3_times)
    print(f"file store (baseline): {file_s:.2f} s to the report (median of {args.repeat}: "
          + ", ".join(f"{t:.2f}" for t in file_times) + f"), {in_file['report']['bytes_read'] / MIB:.2f} MiB read")
    print(f"S3 store, by ranges:   {s3_s:.2f} s to the report (" + ", ".join(f"{t:.2f}" for t in s3_times)
          + f"), {read / MIB:.2f} MiB read, {fetched / MIB:.2f} MiB fetched from S3 = "
          f"{fetched / allocated:.2%} of the image's {allocated / MIB:.0f} MiB")
    print(f"S3 / file: time x{s3_s / file_s:.2f}, bytes fetched / bytes read x{fetched / read:.2f}")


def upload_to(server: Server, token: str, path: Path, store: str) -> str:
    status, data = call(server, token, "POST", "/v2/images",
                        {"name": f"debian-{store}", "disk_format": "qcow2", "container_format": "bare"})
    assert status == 201, data
    image_id = json.loads(data)["id"]
    with path.open("rb") as f:
        status, data = call(server, token, "PUT", f"/v2/images/{image_id}/file", f,
                            {"Content-Type": "application/octet-stream", "X-Image-Meta-Store": store,
                             "Content-Length": str(path.stat().st_size)})
    assert status == 204, data
    return image_id


if __name__ == "__main__":
    main()
