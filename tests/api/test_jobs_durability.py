"""The job engine survives its process dying, and shares one queue between processes."""

from __future__ import annotations

import os
import shutil
import signal
import time

import pytest

from tests.conftest import start_server

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
        assert set(p.name for p in srv.store_dir.iterdir() if p.is_file()) <= live_images
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
