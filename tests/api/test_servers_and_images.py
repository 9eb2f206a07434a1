"""Servers with real disks and QEMU processes; images made from them by jobs."""

from __future__ import annotations

import shutil
import subprocess
import time
from pathlib import Path

import httpx
import pytest

pytestmark = pytest.mark.skipif(shutil.which("qemu-system-x86_64") is None,
                                reason="qemu-system-x86_64 is not installed")
V1 = "/vmimage/v1"
OCTET = {"Content-Type": "application/octet-stream"}
GiB = 1 << 30


def to_raw(src: Path, dst: Path, fmt: str = "qcow2") -> bytes:
    subprocess.run(["qemu-img", "convert", "-f", fmt, "-O", "raw", str(src), str(dst)], check=True)
    return dst.read_bytes()


def wait_job(http: httpx.Client, job_id: str, timeout: float = 120) -> dict:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        job = http.get(f"{V1}/jobs/{job_id}").json()["job"]
        if job["status"] in ("SUCCESS", "FAIL"):
            return job
        time.sleep(0.2)
    raise AssertionError(f"job {job_id} did not finish")


def download(http: httpx.Client, image_id: str, path: Path) -> Path:
    path.write_bytes(http.get(f"/v2/images/{image_id}/file").content)
    return path


@pytest.fixture(scope="module")
def base_image(server, images_dir):
    """A qcow2 image (64 MiB virtual, random data at 3 offsets) uploaded to vmimage."""
    with server.client("demo") as http:
        image = http.post("/v2/images", json={"name": "base", "disk_format": "qcow2",
                                              "container_format": "bare"}).json()
        resp = http.put(f"/v2/images/{image['id']}/file", content=(images_dir / "disk.qcow2").read_bytes(),
                        headers=OCTET)
        assert resp.status_code == 204
    return image["id"]


@pytest.fixture
def http(server):
    with server.client("demo") as c:
        c.timeout = 120
        yield c


def qemu_pids(server_id: str) -> list[int]:
    out = subprocess.run(["pgrep", "-f", f"qemu-system-x86_64.*{server_id}"], capture_output=True, text=True)
    return [int(p) for p in out.stdout.split()]


def test_server_lifecycle_and_images(server, http, base_image, images_dir, tmp_path):
    resp = http.post(f"{V1}/servers", json={
        "name": "web", "image_id": base_image, "system_disk": {"size_gb": 1, "category": "cloud"},
        "data_disks": [{"device": "vdb", "size_gb": 2, "type": "ssd.io1"}], "start": True})
    assert resp.status_code == 201, resp.text
    srv = resp.json()["server"]
    assert srv["status"] == "running" and srv["system_disk"]["size_gb"] == 1
    assert srv["data_disks"][0]["iops"] == 1800   # the floor of ssd.io1
    assert qemu_pids(srv["id"]), "a real QEMU process runs the server"
    # the image is in use now
    assert http.delete(f"/v2/images/{base_image}").status_code == 409

    source_raw = to_raw(images_dir / "disk.qcow2", tmp_path / "src.raw")

    # live image of the running cloud-disk server
    job = http.post(f"{V1}/servers/{srv['id']}/images", json={"name": "live", "kind": "system"})
    assert job.status_code == 202, job.text
    done = wait_job(http, job.json()["job"]["id"])
    assert done["status"] == "SUCCESS", done
    live_id = done["entities"]["image_ids"][0]
    live = http.get(f"/v2/images/{live_id}").json()
    assert live["status"] == "active" and live["disk_format"] == "qcow2" and live["min_disk"] == 1
    assert live["virtual_size"] == GiB
    got = to_raw(download(http, live_id, tmp_path / "live.qcow2"), tmp_path / "live.raw")
    assert got[:len(source_raw)] == source_raw and got[len(source_raw):].count(0) == GiB - len(source_raw)

    # stop, then an image from the stopped server's files
    stopped = http.post(f"{V1}/servers/{srv['id']}/actions/stop").json()["server"]
    assert stopped["status"] == "stopped"
    assert not qemu_pids(srv["id"])
    done = wait_job(http, http.post(f"{V1}/servers/{srv['id']}/images",
                                    json={"name": "cold", "kind": "system"}).json()["job"]["id"])
    assert done["status"] == "SUCCESS", done
    cold = to_raw(download(http, done["entities"]["image_ids"][0], tmp_path / "cold.qcow2"), tmp_path / "cold.raw")
    assert cold == got

    # whole machine: data disk snapshotted, a disk inserted from a snapshot, one resized
    snap = http.post(f"{V1}/snapshots", json={"volume_id": srv["system_disk"]["id"], "name": "s1"})
    assert snap.status_code == 201, snap.text
    snap_id = snap.json()["snapshot"]["id"]
    vol = http.post(f"{V1}/volumes", json={"size_gb": 1, "type": "hdd.std1"}).json()["volume"]
    assert http.post(f"{V1}/volumes/{vol['id']}/attach", json={"server_id": srv["id"], "device": "vdc"}
                     ).status_code == 200
    job = http.post(f"{V1}/servers/{srv['id']}/images", json={
        "name": "whole", "kind": "whole",
        "data_disks": [{"device": "vdb", "size_gb": 3}, {"device": "vdc", "exclude": True},
                       {"device": "vdd", "snapshot_id": snap_id}]})
    assert job.status_code == 202, job.text
    done = wait_job(http, job.json()["job"]["id"])
    assert done["status"] == "SUCCESS", done
    ids = done["entities"]["image_ids"]
    assert len(ids) == 3
    images = [http.get(f"/v2/images/{i}").json() for i in ids]
    assert [i["virtual_size"] for i in images] == [GiB, 3 * GiB, GiB]
    assert [i["min_disk"] for i in images] == [1, 3, 1]
    inserted = to_raw(download(http, ids[2], tmp_path / "ins.qcow2"), tmp_path / "ins.raw")
    assert inserted == got

    # refusals (a device named twice: only an exclusion and a new disk replace it)
    assert http.post(f"{V1}/servers/{srv['id']}/images", json={
        "name": "x", "kind": "whole", "data_disks": [{"device": "vdb", "size_gb": 1},
                                                     {"device": "vdb", "size_gb": 2}]}).status_code == 400
    small = http.post(f"{V1}/servers/{srv['id']}/images", json={
        "name": "x", "kind": "whole", "data_disks": [{"device": "vdb", "size_gb": 1}]})
    assert small.status_code == 400
    assert http.post(f"{V1}/servers/{srv['id']}/images", json={
        "name": "x", "kind": "whole", "data_disks": [{"device": "vde", "snapshot_id": "snap-nope"}]}
    ).status_code == 404
    assert http.delete(f"{V1}/volumes/{vol['id']}").status_code == 409   # attached
    assert http.post(f"{V1}/volumes/{vol['id']}/detach").status_code == 200
    assert http.delete(f"{V1}/volumes/{vol['id']}").status_code == 204

    assert http.delete(f"{V1}/servers/{srv['id']}").status_code == 204
    assert http.get(f"{V1}/servers/{srv['id']}").status_code == 404
    assert http.delete(f"{V1}/snapshots/{snap_id}").status_code == 204


def test_running_local_disk_server_is_refused_and_busy_server_too(server, http, base_image):
    srv = http.post(f"{V1}/servers", json={"name": "local", "image_id": base_image,
                                           "system_disk": {"category": "local"}, "start": True}).json()["server"]
    try:
        refused = http.post(f"{V1}/servers/{srv['id']}/images", json={"name": "x"})
        assert refused.status_code == 409 and refused.json()["error"]["code"] == "must_be_stopped"
        http.post(f"{V1}/servers/{srv['id']}/actions/stop")
        first = http.post(f"{V1}/servers/{srv['id']}/images", json={"name": "a"})
        second = http.post(f"{V1}/servers/{srv['id']}/images", json={"name": "b"})
        assert first.status_code == 202
        assert second.status_code == 409 and second.json()["error"]["code"] == "busy"
        assert wait_job(http, first.json()["job"]["id"])["status"] == "SUCCESS"
    finally:
        http.delete(f"{V1}/servers/{srv['id']}")
    assert not qemu_pids(srv["id"])


def test_server_refusals(http, base_image):
    dup = http.post(f"{V1}/servers", json={"name": "d", "image_id": base_image, "start": False,
                                           "data_disks": [{"device": "vdb", "size_gb": 1},
                                                          {"device": "vdb", "size_gb": 1}]})
    assert dup.status_code == 400
    assert http.post(f"{V1}/servers", json={"name": "n", "image_id": base_image, "start": False,
                                            "data_disks": [{"device": "vdb", "snapshot_id": "snap-x"}]}
                     ).status_code == 404
    assert http.post(f"{V1}/servers", json={"name": "n", "image_id": "00000000-0000-0000-0000-000000000000"}
                     ).status_code == 404
    assert http.post(f"{V1}/volumes", json={"size_gb": 1, "type": "floppy"}).status_code == 400


def test_image_quota_is_checked_before_the_job(tmp_path, database_factory, images_dir):
    from tests.conftest import start_server
    srv = start_server(tmp_path, database_factory(), VMIMAGE_QUOTA_IMAGES="3")
    try:
        with srv.client("demo") as http:
            image = http.post("/v2/images", json={"name": "q", "disk_format": "qcow2",
                                                  "container_format": "bare"}).json()
            http.put(f"/v2/images/{image['id']}/file", content=(images_dir / "disk.qcow2").read_bytes(),
                     headers=OCTET)
            server = http.post(f"{V1}/servers", json={
                "name": "q", "image_id": image["id"], "start": False,
                "data_disks": [{"device": d, "size_gb": 1} for d in ("vdb", "vdc", "vdd")]}).json()["server"]
            refused = http.post(f"{V1}/servers/{server['id']}/images", json={"name": "all", "kind": "whole"})
            assert refused.status_code == 413
            assert len(http.get("/v2/images").json()["images"]) == 1       # nothing was made
            assert http.get(f"{V1}/servers/{server['id']}").json()["server"]["task"] is None
            # (the upload's inspection is the only job)
            assert [j for j in http.get(f"{V1}/jobs").json()["jobs"] if j["kind"] != "image_inspect"] == []
            ok = http.post(f"{V1}/servers/{server['id']}/images", json={
                "name": "two", "kind": "whole", "data_disks": [{"device": "vdc", "exclude": True},
                                                                {"device": "vdd", "exclude": True}]})
            assert ok.status_code == 202
            assert wait_job(http, ok.json()["job"]["id"])["status"] == "SUCCESS"
    finally:
        srv.stop()
