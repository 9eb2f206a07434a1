"""What vmimage leaves on disk: private modes, and access-key secrets never in plaintext."""

from __future__ import annotations

import json
import os
import shutil
import sqlite3
import stat
import subprocess
import time
from pathlib import Path

import httpx

from tests.conftest import VMIMAGE, Server, free_port, provision_personas

V1 = "/vmimage/v1"


def launch(data_dir: Path, log: Path, **env_overrides: str) -> Server:
    """A SQLite server on a data dir this test does not create (start_server makes its own)."""
    port = free_port()
    env = {**os.environ, "VMIMAGE_ADMIN_PASSWORD": "admin", "PYTHONUNBUFFERED": "1", **env_overrides}
    env.pop("VMIMAGE_DATABASE_URL", None)
    proc = subprocess.Popen([*VMIMAGE, "serve", "--data-dir", str(data_dir), "--port", str(port)],
                            env=env, stdout=log.open("a"), stderr=subprocess.STDOUT)
    srv = Server(f"http://127.0.0.1:{port}", data_dir, env, proc)
    deadline = time.monotonic() + 60
    while True:
        assert proc.poll() is None, log.read_text()
        try:
            if httpx.get(f"{srv.url}/versions", timeout=1).status_code == 200:
                return srv
        except httpx.HTTPError:
            pass
        assert time.monotonic() < deadline, "server did not start"
        time.sleep(0.1)


def modes(root: Path) -> dict[str, int]:
    found = {".": stat.S_IMODE(root.stat().st_mode)}
    for dirpath, dirnames, filenames in os.walk(root):
        for name in dirnames + filenames:
            path = Path(dirpath) / name
            st = path.lstat()
            if stat.S_ISDIR(st.st_mode) or stat.S_ISREG(st.st_mode):
                found[str(path.relative_to(root))] = stat.S_IMODE(st.st_mode)
            elif stat.S_ISSOCK(st.st_mode):
                assert not stat.S_IMODE(st.st_mode) & 0o077, path
    return found


def files_holding(root: Path, needle: bytes) -> list[str]:
    return [str(p.relative_to(root)) for p in root.rglob("*") if p.is_file() and needle in p.read_bytes()]


def test_everything_written_is_private_and_secrets_are_sealed(tmp_path, images_dir):
    data = tmp_path / "fresh" / "data"          # made by vmimage itself
    srv = launch(data, tmp_path / "server.log")
    try:
        provision_personas(srv)
        key = json.loads(srv.admin_cli("access-key", "create", "--user", "demo"))
        secret = key["secret_key"].encode()
        assert len(secret) >= 30                 # printed once by the CLI
        with srv.client("demo") as http:
            image = http.post("/v2/images", json={"name": "i", "disk_format": "qcow2",
                                                  "container_format": "bare"}).json()
            assert http.put(f"/v2/images/{image['id']}/file", content=(images_dir / "disk.qcow2").read_bytes(),
                            headers={"Content-Type": "application/octet-stream"}).status_code == 204
            server = http.post(f"{V1}/servers", json={"name": "s", "image_id": image["id"], "start": False})
            assert server.status_code == 201, server.text
            volume = http.post(f"{V1}/volumes", json={"size_gb": 1})
            assert volume.status_code in (200, 201, 202), volume.text
        assert (data / "vmimage.db-wal").exists() and list((data / "disks").rglob("*.qcow2"))
        found = modes(data)
        loose = {path: oct(mode) for path, mode in found.items()
                 if mode != (0o700 if (data / path).is_dir() else 0o600)}
        assert loose == {}
        assert {"vmimage.db", "vmimage.db-wal", "vmimage.db-shm", "secret.key", "clouds.yaml"} <= set(found)
        assert files_holding(data, secret) == []
    finally:
        srv.stop()

    # An earlier version's plaintext row is sealed at the next start and leaves no trace.
    plain = b"PLAINTEXT-secret-of-an-earlier-version-0123"
    with sqlite3.connect(data / "vmimage.db") as db:
        user_id, project_id = db.execute("SELECT id, default_project_id FROM users WHERE name = 'demo'").fetchone()
        db.execute("INSERT INTO access_keys (access_key, secret, user_id, project_id, created_at) "
                   "VALUES ('OLDKEY', ?, ?, ?, '2026-01-01 00:00:00')", (plain.decode(), user_id, project_id))
    assert files_holding(data, plain), "the test must see plaintext where it is"
    # ...and files an earlier version left 0644 (folders 0755) are tightened too.
    loose = [data / "vmimage.db", next((data / "disks").rglob("*.qcow2")), next((data / "images").glob("*-*"))]
    for path in loose:
        path.chmod(0o644)
    (data / "disks").chmod(0o755)
    srv = launch(data, tmp_path / "server.log")
    try:
        assert [oct(stat.S_IMODE(p.stat().st_mode)) for p in loose] == [oct(0o600)] * 3
        assert stat.S_IMODE((data / "disks").stat().st_mode) == 0o700
        assert files_holding(data, plain) == []
        from vmimage.bootstrap import build
        from vmimage.settings import Settings
        container = build(Settings(data_dir=data), migrate=False)
        try:
            assert container.identity.access_key("OLDKEY").secret == plain.decode()
            assert container.identity.access_key(key["access_key"]).secret == secret.decode()
        finally:
            container.close()
    finally:
        srv.stop()


def test_a_data_dir_made_by_the_operator_is_kept_with_a_warning(tmp_path):
    data = tmp_path / "operator"
    data.mkdir(mode=0o755)
    os.chmod(data, 0o755)
    log = tmp_path / "server.log"
    srv = launch(data, log)
    try:
        assert stat.S_IMODE(data.stat().st_mode) == 0o755
        assert "other users may read" in log.read_text()
        assert stat.S_IMODE((data / "vmimage.db").stat().st_mode) == 0o600
    finally:
        srv.stop()


def test_the_secret_key_may_come_from_the_environment(tmp_path):
    data = tmp_path / "keyed"
    srv = launch(data, tmp_path / "server.log", VMIMAGE_SECRET_KEY="an operator's secret")
    try:
        assert not (data / "secret.key").exists()
    finally:
        srv.stop()
    shutil.rmtree(data)
