"""Image insight (issue 25): how long from `active` to the report, how much of the image is read,
and whether a burst of inspections slows creates and downloads.

1. A real Debian 12 (debootstrap: kernel, GRUB, cloud-init, openssh-server) in a 2 GiB GPT
   qcow2, built by tests/guest_images.py and cached, is uploaded; from the upload's 204 (the
   image is active) the native insight route is polled every 20 ms until the report is there.
   Then it is inspected again --repeat times (POST .../insight to the report). Printed: the
   seconds, and the bytes the reader read against the image's allocated bytes (its file size).
2. Creates (--creates image records, 4 clients) and downloads (--downloads of a 64 MiB image,
   one at a time) are timed on an idle server (baseline), right after 20 images became active
   at once (20 concurrent uploads of a small Ubuntu image: 20 inspections queued), and right
   after 20 inspections of the Debian image were asked for at once; --rounds rounds, the three
   in turn, so all see the same machine load. Printed: the ratios of the medians to the
   baseline's (target <= 1.2) and how many inspections were still waiting or running when each
   timing ended (so the timing did overlap them).

    .venv/bin/python bench/insight.py [--repeat 3] [--creates 1000] [--downloads 10] [--rounds 3]
"""

from __future__ import annotations

import http.client
import json
import os
import statistics
import sys
import tempfile
import threading
import time
from pathlib import Path

from _common import HOST, ROOT, Server, base_parser, get_token, populate

sys.path.insert(0, str(ROOT))
from tests.guest_images import debian_disk, os_disk  # noqa: E402

MIB = 1 << 20
TARGET_SECONDS, TARGET_READ, TARGET_SLOWDOWN = 10.0, 0.10, 1.2


def call(server: Server, token: str, method: str, path: str, body=None, headers=None) -> tuple[int, bytes]:
    conn = http.client.HTTPConnection(HOST, server.port, timeout=600)
    hdrs = {"X-Auth-Token": token, **(headers or {})}
    if isinstance(body, (dict, list)):
        body, hdrs["Content-Type"] = json.dumps(body), "application/json"
    conn.request(method, path, body=body, headers=hdrs)
    resp = conn.getresponse()
    data = resp.read()
    conn.close()
    return resp.status, data


def upload(server: Server, token: str, path: Path, name: str, disk_format: str = "qcow2") -> str:
    status, data = call(server, token, "POST", "/v2/images",
                        {"name": name, "disk_format": disk_format, "container_format": "bare"})
    assert status == 201, data
    image_id = json.loads(data)["id"]
    with path.open("rb") as f:
        status, data = call(server, token, "PUT", f"/v2/images/{image_id}/file", f,
                            {"Content-Type": "application/octet-stream", "Content-Length": str(path.stat().st_size)})
    assert status == 204, data
    return image_id


def insight(server: Server, token: str, image_id: str) -> dict:
    status, data = call(server, token, "GET", f"/vmimage/v1/images/{image_id}/insight")
    assert status == 200, data
    return json.loads(data)["insight"]


def wait_report(server: Server, token: str, image_id: str, job_id: str | None = None) -> dict:
    while True:
        found = insight(server, token, image_id)
        if found["status"] in ("done", "failed") and (job_id is None or found["job_id"] == job_id):
            return found
        time.sleep(0.02)


def inspections_open(server: Server, token: str) -> int:
    status, data = call(server, token, "GET", "/vmimage/v1/jobs")
    return sum(1 for j in json.loads(data)["jobs"] if j["kind"] == "image_inspect" and j["status"] in ("INIT", "RUNNING"))


def timed_work(server: Server, token: str, creates: int, downloads: int, download_id: str) -> tuple[float, float]:
    """(seconds for the creates, median seconds of one download)."""
    create_s = populate(server, token, creates, clients=4)
    times = []
    for _ in range(downloads):
        t0 = time.perf_counter()
        status, data = call(server, token, "GET", f"/v2/images/{download_id}/file")
        times.append(time.perf_counter() - t0)
        assert status == 200 and len(data) == 64 * MIB
    return create_s, statistics.median(times)


def main() -> None:
    p = base_parser(__doc__.splitlines()[0])
    p.add_argument("--repeat", type=int, default=3)
    p.add_argument("--creates", type=int, default=1000)
    p.add_argument("--downloads", type=int, default=10)
    p.add_argument("--rounds", type=int, default=3)
    args = p.parse_args()
    t0 = time.monotonic()
    debian = debian_disk(full=True)
    print(f"Debian image {debian.name}: {debian.stat().st_size / MIB:.0f} MiB allocated, 2048 MiB virtual "
          f"(ready in {time.monotonic() - t0:.1f} s; built once, then cached)")
    work = Path(tempfile.mkdtemp(prefix="vmimage-bench-insight-"))
    small = os_disk(work, "ubuntu")
    blob = work / "blob.raw"
    blob.write_bytes(os.urandom(64 * MIB))
    os.environ.setdefault("VMIMAGE_UPLOADS_PER_PROJECT", "-1")     # 20 uploads at once
    with Server(args.data_root, args.keep) as server:
        token = get_token(server)
        # 1. active -> report, and bytes read
        image_id = upload(server, token, debian, "debian-bench")
        t_active = time.perf_counter()
        found = wait_report(server, token, image_id)
        first = time.perf_counter() - t_active
        assert found["status"] == "done", found
        again = []
        for _ in range(args.repeat):
            t1 = time.perf_counter()
            status, data = call(server, token, "POST", f"/vmimage/v1/images/{image_id}/insight")
            assert status == 202, data
            wait_report(server, token, image_id, json.loads(data)["job"]["id"])
            again.append(time.perf_counter() - t1)
        read = found["report"]["bytes_read"]
        os_ = found["report"]["os"]
        print(f"read as {os_['distribution']} {os_['version']} {os_['architecture']} {os_['boot_mode']}, "
              f"kernels {os_['kernels']}; checks: " + ", ".join(f"{c['name']} {c['result']}"
                                                            for c in found["report"]["checks"]))
        print(f"active -> report: {first:.2f} s (target <= {TARGET_SECONDS:g} s); re-inspections: "
              + ", ".join(f"{s:.2f}" for s in again) + " s")
        print(f"bytes read: {read / MIB:.2f} MiB of {debian.stat().st_size / MIB:.0f} MiB allocated = "
              f"{read / debian.stat().st_size:.2%} (target <= {TARGET_READ:.0%})")

        # 2. creates and downloads, idle and behind bursts of inspections
        download_id = upload(server, token, blob, "blob", "raw")   # random bytes: its inspection fails at once
        wait_report(server, token, download_id)
        rounds: dict[str, list[tuple[float, float, int]]] = {"baseline": [], "small": [], "debian": [],
                                                             "control": []}
        with Server(args.data_root, args.keep, env_for=lambda _d: {"VMIMAGE_INSPECT_IMAGES": "false"}) as control:
            control_token = get_token(control)
            control_download = upload(control, control_token, blob, "blob", "raw")
            for r in range(args.rounds):
                rounds["baseline"].append((*timed_work(server, token, args.creates, args.downloads, download_id), 0))

                burst(server, token, small, f"burst-{r}")
                got = timed_work(server, token, args.creates, args.downloads, download_id)
                rounds["small"].append((*got, inspections_open(server, token)))
                while inspections_open(server, token):
                    time.sleep(0.1)

                for _ in range(20):
                    status, data = call(server, token, "POST", f"/vmimage/v1/images/{image_id}/insight")
                    assert status == 202, data
                got = timed_work(server, token, args.creates, args.downloads, download_id)
                rounds["debian"].append((*got, inspections_open(server, token)))
                while inspections_open(server, token):
                    time.sleep(0.1)

                burst(control, control_token, small, f"burst-{r}")     # the same burst, nothing inspected
                rounds["control"].append((*timed_work(control, control_token, args.creates, args.downloads,
                                                      control_download), 0))

        def med(name: str, i: int) -> float:
            return statistics.median(x[i] for x in rounds[name])
        print(f"baseline: {args.creates} creates in {med('baseline', 0):.2f} s, one 64 MiB download "
              f"{med('baseline', 1) * 1000:.0f} ms (medians of {args.rounds})")
        print(f"control, a server with VMIMAGE_INSPECT_IMAGES=false right after the same 20 uploads: creates "
              f"x{med('control', 0) / med('baseline', 0):.2f}, downloads x{med('control', 1) / med('baseline', 1):.2f}")
        for name, label in (("small", "20 small images active at once"),
                            ("debian", "20 inspections of the 2 GiB Debian image")):
            print(f"{label}: creates x{med(name, 0) / med('baseline', 0):.2f} (x{med(name, 0) / med('control', 0):.2f} "
                  f"of the control), downloads x{med(name, 1) / med('baseline', 1):.2f} (target <= {TARGET_SLOWDOWN}); "
                  f"inspections still open when each timing ended: {[x[2] for x in rounds[name]]}")
        for name in rounds:
            print(f"  {name}: creates " + ", ".join(f"{x[0]:.2f}" for x in rounds[name]) + " s; downloads "
                  + ", ".join(f"{x[1] * 1000:.0f}" for x in rounds[name]) + " ms")


def burst(server: Server, token: str, path: Path, prefix: str) -> None:
    """20 images become active at once: 20 concurrent uploads."""
    threads = [threading.Thread(target=upload, args=(server, token, path, f"{prefix}-{i}")) for i in range(20)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()


if __name__ == "__main__":
    main()
