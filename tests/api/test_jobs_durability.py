"""The job engine survives its process dying, and shares one queue between processes."""

from __future__ import annotations

import os
import shutil
import signal
import time

import pytest

from tests.conftest import reaped, start_server

pytestmark = pytest.mark.skipif(shutil.which("qemu-system-x86_64") is None,
                                reason="qemu-system-x86_64 is not installed")
V1 = "/vmimage/v1"


def wait_jobs(http, job_ids, timeout=180):
    deadline = time.monotonic() + timeout
    while True:
        jobs = [http.get(f"{V1}/jobs/{j}").json()["job"] for j in job_ids]
        if all(j["status"] in ("SUCCESS", "FAIL") for j in jobs):
            return jobs
        assert time.monotonic() < deadline, jobs
        time.sleep(0.2)


def files_under(path):
    return sorted(str(p.relative_to(path)) for p in path.rglob("*") if p.is_file())


def test_killed_during_a_job_then_restarted(tmp_path, database_factory):
    db = database_factory()
    srv = start_server(tmp_path, db)
    try:
        with srv.client("demo") as http:
            image = http.post("/v2/images", json={"name": "big", "disk_format": "raw",
                                                  "container_format": "bare"}).json()
            data = os.urandom(1 << 20) * 192     # 192 MiB, so the job takes a while
            http.timeout = 120
            assert http.put(f"/v2/images/{image['id']}/file", content=data,
                            headers={"Content-Type": "application/octet-stream"}).status_code == 204
            server = http.post(f"{V1}/servers", json={"name": "s", "image_id": image["id"],
                                                      "start": False}).json()["server"]
            job = http.post(f"{V1}/servers/{server['id']}/images", json={"name": "img"}).json()["job"]
            for _ in range(400):
                if http.get(f"{V1}/jobs/{job['id']}").json()["job"]["status"] != "INIT":
                    break
                time.sleep(0.01)
        srv.proc.send_signal(signal.SIGKILL)
        srv.proc.wait()
        srv = start_server(tmp_path, db, provision=False, data_dir=srv.data_dir)
        with srv.client("demo") as http:
            (done,) = wait_jobs(http, [job["id"]])
            print("job after restart:", done["status"], done["error_code"])
            assert done["status"] in ("SUCCESS", "FAIL")
            produced = done["entities"]["image_ids"][0]
            shown = http.get(f"/v2/images/{produced}")
            if done["status"] == "FAIL":
                assert done["error_code"] == "interrupted" and shown.status_code == 404
            else:
                assert shown.json()["status"] == "active"
            assert http.get(f"{V1}/servers/{server['id']}").json()["server"]["task"] is None
            live_images = {i["id"] for i in http.get("/v2/images").json()["images"]}
        assert files_under(srv.data_dir / "disks" / "work") == []
        assert files_under(srv.store_dir / ".partial") == []
        reaped(lambda: set(p.name for p in srv.store_dir.iterdir() if p.is_file()) <= live_images)
    finally:
        srv.stop()


def test_two_processes_share_the_queue_and_run_each_job_once(tmp_path, database_factory):
    if os.environ.get("VMIMAGE_TEST_DB", "sqlite") != "postgres":
        pytest.skip("the shared queue across processes is a PostgreSQL feature (VMIMAGE_TEST_DB=postgres)")
    db = database_factory()
    first = start_server(tmp_path, db)
    second = start_server(tmp_path, db, provision=False, data_dir=first.data_dir)
    try:
        with first.client("demo") as a, second.client("demo") as b:
            volumes = [a.post(f"{V1}/volumes", json={"size_gb": 1}).json()["volume"] for _ in range(20)]
            jobs = [(a if i % 2 else b).post(f"{V1}/volumes/{v['id']}/images", json={"name": f"v{i}"}
                                             ).json()["job"] for i, v in enumerate(volumes)]
            done = wait_jobs(a, [j["id"] for j in jobs])
        assert [j["status"] for j in done] == ["SUCCESS"] * 20
        assert [j["attempts"] for j in done] == [1] * 20
        image_ids = [j["entities"]["image_ids"][0] for j in done]
        assert len(set(image_ids)) == 20
    finally:
        second.stop()
        first.stop()


def _children(pid):
    """(pid, argv) of the live processes whose parent is pid."""
    found = []
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            stat = open(f"/proc/{entry}/stat").read()
            argv = open(f"/proc/{entry}/cmdline", "rb").read().split(b"\0")
        except OSError:
            continue
        fields = stat.rsplit(")", 1)[-1].split()
        if int(fields[1]) == pid and fields[0] not in ("Z", "X"):
            found.append((int(entry), argv))
    return found


def _alive(pid):
    try:
        state = open(f"/proc/{pid}/stat").read().rsplit(")", 1)[-1].split()[0]
    except OSError:
        return False
    return state not in ("Z", "X")


def test_a_jobs_qemu_img_dies_with_the_killed_server(tmp_path, database_factory):
    """kill -9 of the serving process during a server-image job: its qemu-img child goes too.

    The child is stopped (SIGSTOP) before the server is killed, so it cannot end by itself:
    only the kernel's parent-death signal can take it away."""
    srv = start_server(tmp_path, database_factory())
    stopped = None
    try:
        with srv.client("demo") as http:
            http.timeout = 120
            image = http.post("/v2/images", json={"name": "big", "disk_format": "raw",
                                                  "container_format": "bare"}).json()
            block = os.urandom(1 << 20)
            assert http.put(f"/v2/images/{image['id']}/file", content=(block for _ in range(256)),
                            headers={"Content-Type": "application/octet-stream"}).status_code == 204
            server = http.post(f"{V1}/servers", json={"name": "s", "image_id": image["id"],
                                                      "start": False}).json()["server"]
            http.post(f"{V1}/servers/{server['id']}/images", json={"name": "img"}).raise_for_status()
        deadline = time.monotonic() + 60
        while stopped is None:
            for pid, argv in _children(srv.proc.pid):
                if b"qemu-img" in os.path.basename(argv[0]) and b"convert" in argv:
                    os.kill(pid, signal.SIGSTOP)
                    stopped = pid
                    break
            assert time.monotonic() < deadline, "no qemu-img convert seen"
            time.sleep(0.002)
        srv.proc.send_signal(signal.SIGKILL)
        srv.proc.wait()
        deadline = time.monotonic() + 5
        while _alive(stopped) and time.monotonic() < deadline:
            time.sleep(0.05)
        assert not _alive(stopped), "qemu-img outlived the server"
        stopped = None
    finally:
        if stopped is not None and _alive(stopped):
            os.kill(stopped, signal.SIGKILL)
        srv.stop()
