"""The S3 store against its peer in the same run: a one-node Swift s3api (scripts/swift-s3.sh).

upload:   1 GiB through vmimage (Glance PUT /file: inspection, md5 + sha512, multipart upload
          into the S3 store) vs the same 1 GiB put straight into the same Swift with boto3's
          multipart upload (upload_fileobj, 8 MiB parts, 10 threads: boto3's defaults), and
          the same with payload signing off (UNSIGNED-PAYLOAD, as vmimage's S3 store sends).
download: the same image through vmimage (GET /file, ranged GETs from S3; the node cache is
          off so every byte comes from S3) vs a direct boto3 GET of the same object.
Each pair runs --repeat times, alternating; medians and every run are printed. The client
sends one reused 1 MiB random buffer (http.client, Content-Length). MB = 10^6 bytes.

    .venv/bin/python bench/s3.py [--size-gib 1] [--repeat 3]
"""

from __future__ import annotations

import http.client
import json
import os
import shutil
import statistics
import sys
import tempfile
import threading
import time
import uuid
from pathlib import Path

from _common import HOST, ROOT, CpuWatch, Server, base_parser, get_token

sys.path.insert(0, str(ROOT))
from tests.swift import start_swift  # noqa: E402

MIB, MB = 1 << 20, 1e6


class _Repeat:
    """A file-like object: `size` bytes of one buffer, for boto3's upload_fileobj."""

    def __init__(self, buf: bytes, size: int) -> None:
        self.buf, self.size, self.pos = buf, size, 0

    def read(self, n: int = -1) -> bytes:
        left = self.size - self.pos
        if left <= 0:
            return b""
        n = left if n is None or n < 0 else min(n, left)
        off = self.pos % len(self.buf)
        out = (self.buf[off:] + self.buf * (n // len(self.buf) + 1))[:n]
        self.pos += n
        return out


def vmimage_upload(server: Server, token: str, buf: bytes, size: int) -> tuple[str, float]:
    conn = http.client.HTTPConnection(HOST, server.port, timeout=600)
    headers = {"X-Auth-Token": token, "Content-Type": "application/json"}
    conn.request("POST", "/v2/images", body=json.dumps({"name": "bench", "disk_format": "raw",
                                                        "container_format": "bare"}), headers=headers)
    resp = conn.getresponse()
    image_id = json.loads(resp.read())["id"]
    t0 = time.perf_counter()
    conn.putrequest("PUT", f"/v2/images/{image_id}/file")
    conn.putheader("X-Auth-Token", token)
    conn.putheader("Content-Type", "application/octet-stream")
    conn.putheader("Content-Length", str(size))
    conn.endheaders()
    for _ in range(size // len(buf)):
        conn.sock.sendall(buf)
    resp = conn.getresponse()
    resp.read()
    elapsed = time.perf_counter() - t0
    if resp.status != 204:
        raise RuntimeError(f"upload failed: {resp.status}")
    conn.close()
    return image_id, elapsed


def vmimage_download(server: Server, token: str, image_id: str, size: int) -> float:
    conn = http.client.HTTPConnection(HOST, server.port, timeout=600)
    t0 = time.perf_counter()
    conn.request("GET", f"/v2/images/{image_id}/file", headers={"X-Auth-Token": token})
    resp = conn.getresponse()
    got = 0
    while chunk := resp.read(MIB):
        got += len(chunk)
    elapsed = time.perf_counter() - t0
    if got != size:
        raise RuntimeError(f"download got {got} bytes of {size}")
    conn.close()
    return elapsed


def direct_upload(s3, bucket: str, key: str, buf: bytes, size: int) -> float:
    t0 = time.perf_counter()
    s3.upload_fileobj(_Repeat(buf, size), bucket, key)
    return time.perf_counter() - t0


def direct_download(s3, bucket: str, key: str, size: int) -> float:
    t0 = time.perf_counter()
    body = s3.get_object(Bucket=bucket, Key=key)["Body"]
    got = 0
    for chunk in body.iter_chunks(MIB):
        got += len(chunk)
    elapsed = time.perf_counter() - t0
    if got != size:
        raise RuntimeError(f"direct GET got {got} bytes of {size}")
    return elapsed


def main() -> None:
    p = base_parser(__doc__)
    p.add_argument("--size-gib", type=float, default=1.0)
    p.add_argument("--repeat", type=int, default=3)
    args = p.parse_args()
    size = int(args.size_gib * 1024) * MIB
    buf = os.urandom(MIB)
    swift = start_swift(Path(tempfile.mkdtemp(prefix="vmimage-bench-swift-", dir=args.data_root)))
    try:
        s3 = swift.client()
        bucket = f"bench-{uuid.uuid4().hex[:8]}"
        s3.create_bucket(Bucket=bucket)
        env = {**swift.env, "VMIMAGE_STORES": f"obj=s3://{bucket}/images", "VMIMAGE_CACHE_ENABLED": "false",
               "VMIMAGE_HTTP_STORE": ""}
        with Server(args.data_root, args.keep, env_for=lambda _d: env) as server:
            token = get_token(server)
            from botocore.config import Config
            import boto3
            s3u = boto3.client("s3", endpoint_url=swift.endpoint, aws_access_key_id=swift.env["VMIMAGE_S3_ACCESS_KEY"],
                               aws_secret_access_key=swift.env["VMIMAGE_S3_SECRET_KEY"], region_name="us-east-1",
                               config=Config(s3={"addressing_style": "path", "payload_signing_enabled": False},
                                             request_checksum_calculation="when_required",
                                             response_checksum_validation="when_required"))
            up_v, up_d, up_u, down_v, down_d = [], [], [], [], []
            for i in range(args.repeat):
                peak, stop = [server.rss_kb()], threading.Event()

                def sample() -> None:
                    while not stop.wait(0.05):
                        peak.append(server.rss_kb())
                sampler = threading.Thread(target=sample, daemon=True)
                sampler.start()
                with CpuWatch(server) as cpu:
                    image_id, t = vmimage_upload(server, token, buf, size)
                stop.set()
                sampler.join()
                up_v.append(size / t / MB)
                print(f"upload   vmimage {up_v[-1]:7.1f} MB/s ({t:.2f} s)  {cpu.text()}; server RSS peak "
                      f"{max(peak) / 1024:.1f} MiB (before {peak[0] / 1024:.1f})", flush=True)
                key = f"direct-{i}"
                t = direct_upload(s3, bucket, key, buf, size)
                up_d.append(size / t / MB)
                print(f"upload   boto3   {up_d[-1]:7.1f} MB/s ({t:.2f} s)", flush=True)
                t = direct_upload(s3u, bucket, key + "-u", buf, size)
                up_u.append(size / t / MB)
                print(f"upload   boto3 unsigned payload {up_u[-1]:7.1f} MB/s ({t:.2f} s)", flush=True)
                s3.delete_object(Bucket=bucket, Key=key + "-u")
                with CpuWatch(server) as cpu:
                    t = vmimage_download(server, token, image_id, size)
                down_v.append(size / t / MB)
                print(f"download vmimage {down_v[-1]:7.1f} MB/s ({t:.2f} s)  {cpu.text()}", flush=True)
                t = direct_download(s3, bucket, key, size)
                down_d.append(size / t / MB)
                print(f"download boto3   {down_d[-1]:7.1f} MB/s ({t:.2f} s)", flush=True)
                s3.delete_object(Bucket=bucket, Key=key)
            mu, md, mv, mdd, muu = (statistics.median(x) for x in (up_v, up_d, down_v, down_d, up_u))
            print(f"\nupload:   vmimage {mu:.1f} MB/s vs boto3 multipart {md:.1f} MB/s: ratio {mu / md:.2f} "
                  f"(per run {', '.join(f'{a / b:.2f}' for a, b in zip(up_v, up_d))}); vs boto3 with an "
                  f"unsigned payload {muu:.1f} MB/s: ratio {mu / muu:.2f}")
            print(f"download: vmimage {mv:.1f} MB/s vs direct GET {mdd:.1f} MB/s: ratio {mv / mdd:.2f} "
                  f"(per run {', '.join(f'{a / b:.2f}' for a, b in zip(down_v, down_d))})")
    finally:
        swift.stop()
        if not args.keep:
            shutil.rmtree(swift.dir, ignore_errors=True)


if __name__ == "__main__":
    main()
