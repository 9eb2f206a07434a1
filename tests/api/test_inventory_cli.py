"""`vmimage server|volume|snapshot|job ...` against a real service, as a user runs them."""

from __future__ import annotations

import json
import shutil
import subprocess

import pytest

from tests.conftest import VMIMAGE

pytestmark = pytest.mark.skipif(shutil.which("qemu-img") is None, reason="qemu-img is not installed")


def test_inventory_cli(server, images_dir):
    env = {**server.env, "VMIMAGE_URL": server.url, "VMIMAGE_USER": "demo", "VMIMAGE_PASSWORD": "demo",
           "VMIMAGE_PROJECT": "demo"}

    def run(*args: str) -> subprocess.CompletedProcess:
        return subprocess.run([*VMIMAGE, *args], env=env, capture_output=True, text=True, timeout=180)

    def cli(*args: str) -> str:
        out = run(*args)
        assert out.returncode == 0, f"{args}: {out.stderr}"
        return out.stdout

    base = json.loads(cli("image", "create", "--file", str(images_dir / "disk.qcow2"), "--name", "cli-base"))
    assert base["status"] == "active"

    srv = json.loads(cli("server", "create", "--name", "cli-srv", "--image", base["id"], "--system-size", "1",
                         "--category", "cloud", "--data-disk", "vdb:2:hdd.std1", "--no-start"))
    assert srv["status"] == "stopped" and srv["system_disk"]["size_gb"] == 1
    [vdb] = srv["data_disks"]
    assert (vdb["device"], vdb["size_gb"], vdb["type"]) == ("vdb", 2, "hdd.std1")
    assert srv["id"] in cli("server", "list")
    assert json.loads(cli("server", "show", srv["id"]))["name"] == "cli-srv"

    # a whole-machine image, waited for: the job's final JSON on stdout
    done = json.loads(cli("server", "image", srv["id"], "--name", "cli-whole", "--kind", "whole",
                          "--description", "from the CLI", "--wait"))
    assert done["status"] == "SUCCESS" and done["progress"] == 100, done
    image_ids = done["entities"]["image_ids"]
    assert len(image_ids) == 2
    images = [json.loads(cli("image", "show", i)) for i in image_ids]
    assert [i["status"] for i in images] == ["active", "active"]
    assert [i["name"] for i in images] == ["cli-whole", "cli-whole-vdb"]

    vol = json.loads(cli("volume", "create", "--size", "1", "--type", "hdd.std1", "--name", "cli-vol"))
    assert vol["status"] == "available" and vol["type"] == "hdd.std1"
    assert vol["id"] in cli("volume", "list")
    snap = json.loads(cli("snapshot", "create", "--volume", vol["id"], "--name", "cli-snap"))
    assert snap["volume_id"] == vol["id"] and snap["size_gb"] == 1
    listed = cli("snapshot", "list")
    assert snap["id"] in listed and "cli-snap" in listed

    jobs = cli("job", "list")
    assert done["id"] in jobs and "SUCCESS" in jobs
    assert json.loads(cli("job", "show", done["id"]))["entities"]["image_ids"] == image_ids
    assert json.loads(cli("job", "wait", done["id"]))["status"] == "SUCCESS"   # already over: at once

    # refusals: one line on stderr, exit 1 (the service's), exit 2 (the command line's)
    refused = run("server", "image", "i-nope", "--name", "x", "--kind", "whole", "--wait")
    assert refused.returncode == 1 and refused.stdout == ""
    assert len(refused.stderr.strip().splitlines()) == 1, refused.stderr
    assert "404" in refused.stderr and "i-nope" in refused.stderr
    assert run("server", "image", srv["id"], "--name", "x", "--exclude", "vdb").returncode == 2
    assert run("server", "create", "--name", "x", "--image", base["id"], "--data-disk", "vdb").returncode == 2

    # clean up: the cloud data disk outlives its server
    assert cli("snapshot", "delete", snap["id"]).strip() == f"deleted {snap['id']}"
    cli("volume", "delete", vol["id"])
    cli("server", "delete", srv["id"])
    assert run("server", "show", srv["id"]).returncode == 1
    assert json.loads(cli("volume", "show", vdb["id"]))["status"] == "available"
    cli("volume", "delete", vdb["id"])
    for image_id in [*image_ids, base["id"]]:
        cli("image", "delete", image_id)
    assert srv["id"] not in cli("server", "list")
