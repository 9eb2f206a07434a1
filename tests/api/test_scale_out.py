"""Two vmimage processes behind nginx (scripts/scale-out.sh) on one PostgreSQL database and an
S3 default store on a real Swift: one service whatever process answers."""

from __future__ import annotations

import hashlib
import os
import subprocess
import time
import uuid
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import httpx
import pytest

from tests.api.test_import import OCTET, new_image, stage, wait_import
from tests.conftest import ROOT, Server, pg_databases, provision_personas

SCRIPT = ROOT / "scripts" / "scale-out.sh"


@pytest.fixture(scope="module")
def pg_database():
    with pg_databases("vmimage_scale") as make:
        yield make()


@pytest.fixture(scope="module")
def cluster(tmp_path_factory, swift_s3, pg_database):
    if not (Path("/usr/sbin/nginx").exists() or subprocess.run(["which", "nginx"], capture_output=True).returncode == 0):
        print("\nSKIP: nginx is not installed (scripts/install.sh --test installs it)")
        pytest.skip("nginx is not installed")
    tmp = tmp_path_factory.mktemp("scale")
    env = {**os.environ, **swift_s3.env, "VMIMAGE_DATABASE_URL": pg_database, "VMIMAGE_ADMIN_PASSWORD": "admin",
           "VMIMAGE_STORES": f"obj=s3://scale-{uuid.uuid4().hex[:8]}/images", "PYTHONUNBUFFERED": "1",
           "VMIMAGE_PYTHON": os.environ.get("VMIMAGE_PYTHON", str(Path(os.sys.executable)))}
    out = subprocess.run(["bash", str(SCRIPT), "start", str(tmp)], env=env, capture_output=True, text=True,
                         timeout=300)
    assert out.returncode == 0, out.stderr
    urls = dict(line.split("=", 1) for line in out.stdout.splitlines() if "=" in line)
    nodes = {name: Server(urls[var], tmp / data, env, None)
             for name, var, data in (("lb", "VMIMAGE_URL", "node1"), ("n1", "NODE1_URL", "node1"),
                                     ("n2", "NODE2_URL", "node2"))}
    provision_personas(nodes["n1"])
    yield nodes
    subprocess.run(["bash", str(SCRIPT), "stop", str(tmp)], env=env, timeout=120)


def client(url: str, token: str) -> httpx.Client:
    return httpx.Client(base_url=url, headers={"X-Auth-Token": token}, timeout=120)


def test_a_token_from_one_process_is_accepted_by_the_other(cluster):
    token = cluster["n1"].token("demo")
    with client(cluster["n2"].url, token) as n2:
        assert n2.get("/v2/images").status_code == 200
    cluster["n1"].tokens.clear()
    other = cluster["n2"].token("alt")
    with client(cluster["n1"].url, other) as n1:
        assert n1.get("/v2/images").status_code == 200


def test_upload_through_one_download_through_the_other(cluster):
    token = cluster["n1"].token("demo")
    data = os.urandom(12 << 20)
    with client(cluster["n1"].url, token) as n1, client(cluster["n2"].url, token) as n2, \
            client(cluster["lb"].url, token) as lb:
        image_id = new_image(n1)
        assert n1.put(f"/v2/images/{image_id}/file", content=data, headers=OCTET).status_code == 204
        assert n2.get(f"/v2/images/{image_id}").json()["stores"] == "obj"
        assert hashlib.sha256(n2.get(f"/v2/images/{image_id}/file").content).digest() == hashlib.sha256(data).digest()
        ranged = lb.get(f"/v2/images/{image_id}/file", headers={"Range": "bytes=100-199"})
        assert ranged.status_code == 206 and ranged.content == data[100:200]


def test_staged_on_one_imported_by_the_other(cluster):
    token = cluster["n1"].token("demo")
    data = os.urandom(3 << 20)
    with client(cluster["n1"].url, token) as n1, client(cluster["n2"].url, token) as n2:
        image_id = new_image(n1)
        stage(n1, image_id, data)
        assert n2.post(f"/v2/images/{image_id}/import", json={"method": {"name": "glance-direct"}}).status_code == 202
        assert wait_import(n2, image_id)["status"] == "active"
        assert n1.get(f"/v2/images/{image_id}/file").content == data


def test_jobs_through_the_balancer_run_once(cluster):
    token = cluster["lb"].token("demo")
    with client(cluster["lb"].url, token) as lb:
        images = [new_image(lb) for _ in range(6)]
        for image_id in images:
            stage(lb, image_id, os.urandom(1 << 20))

        def start(image_id: str) -> int:
            return lb.post(f"/v2/images/{image_id}/import", json={"method": {"name": "glance-direct"}}).status_code

        with ThreadPoolExecutor(6) as pool:
            assert list(pool.map(start, images)) == [202] * 6
        for image_id in images:
            assert wait_import(lb, image_id, timeout=120)["status"] == "active"
        deadline = time.monotonic() + 30
        while True:
            # Each image's inspection job fails on random bytes: only the imports count here.
            jobs = [j for j in lb.get("/vmimage/v1/jobs").json()["jobs"]
                    if j["status"] in ("SUCCESS", "FAIL") and j["kind"] != "image_inspect"]
            if len(jobs) >= 7:
                break
            assert time.monotonic() < deadline
            time.sleep(0.2)
        assert {(j["status"], j["attempts"]) for j in jobs} == {("SUCCESS", 1)}


def test_serve_workers_needs_postgresql_and_runs_n_processes(tmp_path, pg_database, swift_s3):
    from tests.conftest import VMIMAGE, free_port

    refused = subprocess.run([*VMIMAGE, "serve", "--data-dir", str(tmp_path / "lite"), "--workers", "2"],
                             capture_output=True, text=True, timeout=60,
                             env={k: v for k, v in os.environ.items() if k != "VMIMAGE_DATABASE_URL"})
    assert refused.returncode == 2 and "PostgreSQL" in refused.stderr
    port = free_port()
    env = {**os.environ, **swift_s3.env, "VMIMAGE_DATABASE_URL": pg_database, "VMIMAGE_ADMIN_PASSWORD": "admin",
           "VMIMAGE_STORES": f"obj=s3://workers-{uuid.uuid4().hex[:8]}"}
    log = open(tmp_path / "serve.log", "w")
    proc = subprocess.Popen([*VMIMAGE, "serve", "--data-dir", str(tmp_path / "d"), "--port", str(port),
                             "--workers", "2"], env=env, stdout=log, stderr=subprocess.STDOUT)
    try:
        deadline = time.monotonic() + 120
        while True:
            try:
                if httpx.get(f"http://127.0.0.1:{port}/versions", timeout=1).status_code == 200:
                    break
            except httpx.HTTPError:
                pass
            assert proc.poll() is None and time.monotonic() < deadline, (tmp_path / "serve.log").read_text()
            time.sleep(0.2)
        children = subprocess.run(["pgrep", "-P", str(proc.pid)], capture_output=True, text=True).stdout.split()
        assert len(children) >= 2
        token = httpx.post(f"http://127.0.0.1:{port}/identity/v3/auth/tokens", json={"auth": {
            "identity": {"methods": ["password"], "password": {"user": {
                "name": "admin", "password": "admin", "domain": {"name": "Default"}}}},
            "scope": {"project": {"name": "admin", "domain": {"name": "Default"}}}}}).headers["X-Subject-Token"]
        with client(f"http://127.0.0.1:{port}", token) as http:
            for _ in range(10):      # whichever worker answers knows the token
                assert http.get("/v2/images").status_code == 200
    finally:
        proc.terminate()
        proc.wait(timeout=30)
