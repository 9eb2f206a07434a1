"""The Aries face (/aries/api/v1) over HTTP against a real server with one import root."""

from __future__ import annotations

import hashlib
import os
import shutil
import struct
import subprocess
import time
from pathlib import Path

import httpx
import pytest

from tests.conftest import start_server

A = "/aries/api/v1"
HAS_QEMU = shutil.which("qemu-system-x86_64") is not None


def make_iso(path: Path, blocks: int = 64) -> Path:
    """A minimal ISO 9660 image: a primary volume descriptor and a terminator."""
    data = bytearray(blocks * 2048)
    pvd, end = 16 * 2048, 17 * 2048
    data[pvd], data[pvd + 1:pvd + 7] = 1, b"CD001\x01"
    struct.pack_into("<I", data, pvd + 80, blocks)
    struct.pack_into(">I", data, pvd + 84, blocks)
    struct.pack_into("<H", data, pvd + 128, 2048)
    struct.pack_into(">H", data, pvd + 130, 2048)
    data[end], data[end + 1:end + 7] = 255, b"CD001\x01"
    path.write_bytes(bytes(data))
    return path


@pytest.fixture(scope="module")
def root(tmp_path_factory, images_dir) -> Path:
    """The import root: one file per supported format, and traps."""
    r = tmp_path_factory.mktemp("import-root")
    (r / "sub").mkdir()
    for name in ("disk.qcow2", "disk.raw", "disk.vmdk", "backing.qcow2"):
        shutil.copy(images_dir / name, r / name)
    shutil.copy(images_dir / "disk.qcow2", r / "sub" / "nested.qcow2")
    for fmt, name in (("vpc", "disk.vhd"), ("vhdx", "disk.vhdx")):
        subprocess.run(["qemu-img", "create", "-f", fmt, str(r / name), "8M"], check=True, capture_output=True)
    make_iso(r / "disk.iso")
    (r / "passwd-link").symlink_to("/etc/passwd")
    outside = tmp_path_factory.mktemp("outside")
    shutil.copy(images_dir / "disk.qcow2", outside / "secret.qcow2")
    (r / "dir-link").symlink_to(outside, target_is_directory=True)
    (r / "inside-link.qcow2").symlink_to(r / "disk.qcow2")
    os.mkfifo(r / "fifo")
    # A hard link inside the root to a 0600 file elsewhere, and a file of another user.
    (outside / "secret.qcow2").chmod(0o600)
    os.link(outside / "secret.qcow2", r / "hard-link.qcow2")
    shutil.copy(images_dir / "disk.qcow2", r / "foreign.qcow2")
    if os.geteuid() == 0:
        os.chown(r / "foreign.qcow2", 65534, 65534)
    return r


@pytest.fixture(scope="module")
def aries(tmp_path_factory, database_factory, root):
    srv = start_server(tmp_path_factory.mktemp("aries"), database_factory(), VMIMAGE_IMPORT_ROOTS=f" {root} ,")
    yield srv
    srv.stop()
    shutil.rmtree(srv.data_dir, ignore_errors=True)


def client(srv, persona: str = "demo") -> httpx.Client:
    return httpx.Client(base_url=srv.url + A, headers={"Authorization": f"Bearer {srv.token(persona)}"},
                        timeout=120)


@pytest.fixture
def api(aries):
    with client(aries) as c:
        yield c


_counter = iter(range(10 ** 6))


def spec(root: Path, name: str | None = None, path: str = "disk.qcow2", **extra) -> dict:
    return {"name": name or f"img-{next(_counter)}", "os_type": "linux", "os_name": "CentOS",
            "description": "CentOS 7.9 64位基础镜像", "source_path": str(root / path), **extra}


def create(api: httpx.Client, root: Path, **kw) -> dict:
    resp = api.post("/image/create", json=spec(root, **kw))
    assert resp.status_code == 200, resp.text
    return resp.json()["image"]


def refused(resp: httpx.Response, status: int, code: str) -> None:
    assert (resp.status_code, resp.json()["code"]) == (status, code), resp.text
    assert set(resp.json()) == {"code", "message"} and resp.json()["message"]


# --- images ------------------------------------------------------------------------------------

def test_image_lifecycle(api, aries, root):
    body = spec(root, name="CentOS-7.9-x64")
    image = api.post("/image/create", json=body).json()["image"]
    assert set(image) == {"id", "name", "os_type", "os_name", "description", "source_path", "created_at",
                          "image_ref"}
    assert isinstance(image["id"], int) and image["source_path"] == body["source_path"]
    assert image["image_ref"].startswith("img-") and len(image["image_ref"]) == 16
    assert image["created_at"].endswith("Z")

    shown = api.get(f"/image/{image['id']}").json()
    assert shown == {**image, "updated_at": shown["updated_at"]}

    updated = api.put("/image", json={"id": image["id"], "name": "CentOS-7.9-x64-v2", "os_type": "linux",
                                      "description": "new", "source_path": "/etc/passwd"})
    assert updated.status_code == 200, updated.text
    assert updated.json()["name"] == "CentOS-7.9-x64-v2" and updated.json()["description"] == "new"
    assert updated.json()["source_path"] == body["source_path"]     # cannot change
    assert updated.json()["image_ref"] == image["image_ref"]

    listed = api.get("/image/list").json()
    assert isinstance(listed, list) and listed[0]["id"] == image["id"]
    assert "source_path" not in listed[0] and listed[0]["image_ref"] == image["image_ref"]

    assert api.delete("/image/delete", params={"image_ref": image["image_ref"]}).json() == {"result": True}
    refused(api.get(f"/image/{image['id']}"), 404, "ImageNotFound")
    assert (root / "disk.qcow2").exists(), "the original is never deleted"


@pytest.mark.parametrize("path,fmt", [("disk.qcow2", "qcow2"), ("disk.raw", "raw"), ("disk.vmdk", "vmdk"),
                                      ("disk.vhd", "vpc"), ("disk.vhdx", "vhdx"), ("disk.iso", "iso"),
                                      ("sub/nested.qcow2", "qcow2")])
def test_registered_file_is_inspected_hashed_and_copied(api, aries, root, path, fmt):
    image = create(api, root, path=path)
    with aries.client("demo") as glance:
        found = glance.get("/v2/images", params={"name": image["name"]}).json()["images"]
    assert len(found) == 1 and found[0]["status"] == "active"
    assert found[0]["disk_format"] == {"vpc": "vhd"}.get(fmt, fmt)
    data = (root / path).read_bytes()
    assert found[0]["checksum"] == hashlib.md5(data).hexdigest() and found[0]["size"] == len(data)
    copy = aries.store_dir / found[0]["id"]
    assert copy.read_bytes() == data and copy.stat().st_ino != (root / path).stat().st_ino
    api.delete("/image/delete", params={"image_ref": image["image_ref"]})
    assert (root / path).read_bytes() == data


@pytest.mark.parametrize("path", [
    "/etc/passwd", "{root}/../../etc/passwd", "{root}/sub/../disk.qcow2", "{root}/passwd-link",
    "{root}/dir-link/secret.qcow2", "{root}/inside-link.qcow2", "{root}/sub", "{root}", "{root}/fifo",
    "{root}/missing.qcow2", "disk.qcow2", "", 42, "{root}/backing.qcow2", "{root}x/disk.qcow2",
    "{root}/hard-link.qcow2",
    pytest.param("{root}/foreign.qcow2", marks=pytest.mark.skipif(os.geteuid() != 0, reason="needs root to chown")),
])
def test_source_path_outside_the_roots_or_unsafe_is_refused(api, root, path):
    body = spec(root)
    body["source_path"] = path.format(root=root) if isinstance(path, str) else path
    refused(api.post("/image/create", json=body), 400, "InvalidSourcePath")
    # nothing is left behind: the name is still free
    create(api, root, name=body["name"])


def test_an_image_without_source_path_is_a_record_no_server_is_made_of(api, root):
    """source_path is optional (the page's table): the image is listed, described, updated
    and deleted, and server/create refuses it, there being no data to build a disk on."""
    body = spec(root)
    del body["source_path"]
    resp = api.post("/image/create", json=body)
    assert resp.status_code == 200, resp.text
    image = resp.json()["image"]
    assert image["source_path"] is None and image["os_name"] == "CentOS"
    assert api.get(f"/image/{image['id']}").json()["name"] == body["name"]
    assert body["name"] in {i["name"] for i in api.get("/image/list", params={"os_name": "cent"}).json()}
    refused(api.post("/server/create", json=server_spec(image["image_ref"])), 400, "InvalidParameter")
    assert not [s for s in api.get("/server").json() if s["name"] == "web" and s["volumes"][0]["image_ref"]
                == image["image_ref"]]
    assert api.delete("/image/delete", params={"image_ref": image["image_ref"]}).json() == {"result": True}


def test_the_default_import_root_is_inside_the_data_dir(server, root):
    """No VMIMAGE_IMPORT_ROOTS: one root, <data dir>/import, made 0700 at first start; a file
    anywhere else is refused. The page's own example works with its file put there."""
    import_root = server.data_dir / "import"
    assert import_root.is_dir() and import_root.stat().st_mode & 0o777 == 0o700
    with client(server) as api:
        refused(api.post("/image/create", json=spec(root)), 400, "InvalidSourcePath")
        make_iso(import_root / "file.iso")
        page = {"name": "CentOS-7.9-x64", "os_type": "linux", "os_name": "CentOS",
                "description": "CentOS 7.9 64位基础镜像", "source_path": str(import_root / "file.iso")}
        resp = api.post("/image/create", json=page)
        assert resp.status_code == 200, resp.text
        image = resp.json()["image"]
        assert {k: image[k] for k in page} == page and isinstance(image["id"], int)
        made = api.post("/server/create", json=server_spec(image["image_ref"], name="from-the-page"))
        assert made.status_code == 200, made.text
        assert api.delete("/server/delete", params={"server_ref": made.json()["id"]}).status_code == 200
        assert api.delete("/image/delete", params={"image_ref": image["image_ref"]}).status_code == 200
    assert (import_root / "file.iso").exists()      # a registered file is never touched


def test_import_roots_set_empty_turn_registration_off(tmp_path_factory, database_factory, root):
    srv = start_server(tmp_path_factory.mktemp("aries-off"), database_factory(), VMIMAGE_IMPORT_ROOTS="")
    try:
        (srv.data_dir / "import").mkdir(mode=0o700, exist_ok=True)    # where the default root would be
        make_iso(srv.data_dir / "import" / "file.iso")
        with client(srv) as api:
            body = {**spec(root), "source_path": str((srv.data_dir / "import" / "file.iso").resolve())}
            refused(api.post("/image/create", json=body), 400, "InvalidSourcePath")
    finally:
        srv.stop()


@pytest.mark.parametrize("change", [{"name": None}, {"name": ""}, {"os_type": "Linux"}, {"os_type": "mac"},
                                    {"os_name": None}, {"description": 5}, {"uuid": "not-a-uuid"}])
def test_create_refuses_bad_parameters(api, root, change):
    body = {**spec(root), **change}
    if change.get("name", "x") is None or change.get("os_name", "x") is None:
        body = {k: v for k, v in body.items() if v is not None}
    refused(api.post("/image/create", json=body), 400, "InvalidParameter")


def test_create_refuses_malformed_json(api):
    refused(api.post("/image/create", content=b"{nope", headers={"Content-Type": "application/json"}),
            400, "InvalidParameter")
    refused(api.post("/image/create", json=[1]), 400, "InvalidParameter")


def test_names_are_unique(api, root):
    first = create(api, root)
    refused(api.post("/image/create", json=spec(root, name=first["name"])), 400, "ImageExists")
    second = create(api, root)
    refused(api.put("/image", json={"id": second["id"], "name": first["name"]}), 400, "ImageNameExists")
    assert api.put("/image", json={"id": first["id"], "name": first["name"]}).status_code == 200


def test_uuid_becomes_the_ref(api, root):
    uuid = "01636970-e0a5-4f62-a1b7-3cfd8709e6b9"
    image = create(api, root, uuid=uuid, version="1.0", size=40, status="可用", os_platform="linux")
    assert image["image_ref"] == uuid
    refused(api.post("/image/create", json=spec(root, uuid=uuid)), 400, "InvalidParameter")
    assert api.delete("/image/delete", params={"image_ref": uuid}).json() == {"result": True}


def test_image_ref_resolves_by_ref_then_id_then_unique_name(api, root):
    a = create(api, root)
    b = create(api, root, name=str(a["id"]))        # a name that looks like a's id
    by_name = create(api, root)
    refused(api.delete("/image/delete", params={"image_ref": "img-zzzzzzzzzzzz"}), 404, "ImageNotFound")
    assert api.delete("/image/delete", params={"image_ref": str(a["id"])}).status_code == 200
    refused(api.get(f"/image/{a['id']}"), 404, "ImageNotFound")
    assert api.get(f"/image/{b['id']}").status_code == 200       # the id won over b's name
    assert api.delete("/image/delete", params={"image_ref": str(a["id"])}).status_code == 200   # now b, by name
    refused(api.get(f"/image/{b['id']}"), 404, "ImageNotFound")
    assert api.delete("/image/delete", params={"image_ref": by_name["name"]}).status_code == 200


@pytest.mark.parametrize("params", [{}, {"image_ref": ""}, {"image_ref": "  "}])
def test_delete_needs_a_ref(api, params):
    refused(api.delete("/image/delete", params=params), 400, "InvalidParameter")


def test_describe_and_update_refusals(api, aries, root):
    for bad in ("abc", "0", "-1", "1.5"):
        refused(api.get(f"/image/{bad}"), 400, "InvalidParameter")
    refused(api.get("/image/999999"), 404, "ImageNotFound")
    image = create(api, root)
    with client(aries, "alt") as other:
        refused(other.get(f"/image/{image['id']}"), 404, "ImageNotFound")
        refused(other.delete("/image/delete", params={"image_ref": image["image_ref"]}), 404, "ImageNotFound")
    refused(api.put("/image", json={"name": "x"}), 400, "InvalidParameter")
    refused(api.put("/image", json={"id": "x"}), 400, "InvalidParameter")
    refused(api.put("/image", json={"id": 999999, "name": "x"}), 404, "ImageNotFound")
    refused(api.put("/image", json={"id": image["id"], "os_type": "Windows"}), 400, "InvalidParameter")
    assert api.put("/image", json={"id": image["id"], "os_type": "windows"}).json()["os_type"] == "windows"


def test_list_filters_newest_first(api, root):
    tag = f"Distro{next(_counter)}"
    made = [create(api, root, os_name=f"{tag}-{i}", os_type="windows" if i % 2 else "linux") for i in range(3)]
    listed = api.get("/image/list", params={"os_name": tag.lower()}).json()    # fuzzy, any case
    assert [i["id"] for i in listed] == [m["id"] for m in reversed(made)]
    windows = api.get("/image/list", params={"os_name": tag, "os_type": "windows"}).json()
    assert [i["id"] for i in windows] == [made[1]["id"]]
    assert api.get("/image/list", params={"os_name": "%"}).json() == []       # wildcards are literal
    refused(api.get("/image/list", params={"os_type": "Linux"}), 400, "InvalidParameter")


def test_protected_images_cannot_be_deleted(api, aries, root):
    image = create(api, root)
    with aries.client("demo") as glance:
        gid = glance.get("/v2/images", params={"name": image["name"]}).json()["images"][0]["id"]
        resp = glance.patch(f"/v2/images/{gid}", json=[{"op": "replace", "path": "/protected", "value": True}],
                            headers={"Content-Type": "application/openstack-images-v2.1-json-patch"})
        assert resp.status_code == 200, resp.text
    refused(api.delete("/image/delete", params={"image_ref": image["image_ref"]}), 400, "ImageProtected")


# --- auth ----------------------------------------------------------------------------------------

def test_basic_auth_and_refusals(aries, root):
    with httpx.Client(base_url=aries.url + A, auth=("demo", "demo")) as basic:
        assert basic.get("/image/list").status_code == 200
    for headers in ({}, {"Authorization": "Bearer nope"}, {"Authorization": "Basic !!!"},
                    {"Authorization": "Basic ZGVtbzp3cm9uZw=="}, {"Authorization": "Token x"}):
        resp = httpx.get(f"{aries.url}{A}/image/list", headers=headers)
        assert resp.status_code == 401 and resp.json() == {"code": "Unauthorized", "message": "认证失败"}
    with client(aries, "reader") as reader:
        refused(reader.post("/image/create", json=spec(root)), 403, "Forbidden")
        assert reader.get("/image/list").status_code == 200


def test_unknown_route_answers_in_the_aries_envelope(api):
    refused(api.get("/nothing/here"), 404, "ResourceNotFound")


# --- servers and volumes ---------------------------------------------------------------------------

def server_spec(image_ref: str, **kw) -> dict:
    return {"name": kw.pop("name", "web"), "compute": {"cpu_core_count": kw.pop("cpu", 1),
                                                       "memory_size": kw.pop("memory", 128)},
            "storage": {"volumes": kw.pop("volumes", [
                {"name": "sys", "size": 1, "type": 0, "image_ref": image_ref},
                {"name": "data", "size": 1, "type": 1}])},
            "option": {"boot_when_created": kw.pop("boot", False)}, **kw}


def test_server_and_volume_routes(api, root):
    image = create(api, root)
    resp = api.post("/server/create", json=server_spec(image["image_ref"], name="auto"))
    assert resp.status_code == 200, resp.text
    made = resp.json()
    assert made["status"] == "creating" and made["id"].startswith("i-")
    assert made["name"].startswith("i") and len(made["name"]) == 15
    assert [v["type"] for v in made["volumes"]] == [0, 1] and made["volumes"][0]["image_ref"] == image["image_ref"]

    listed = api.get("/server").json()
    mine = next(s for s in listed if s["uuid"] == made["id"])
    assert isinstance(mine["id"], int) and mine["status"] == "stopped" and mine["os_type"] == "linux"
    assert mine["cpu_core_count"] == 1 and mine["memory_size"] == 128
    assert api.get(f"/server/{mine['id']}").json()["uuid"] == made["id"]
    assert api.get(f"/server/{made['id']}").json()["id"] == mine["id"]
    assert api.get("/server", params={"name": made["name"][3:].upper()}).json()[0]["uuid"] == made["id"]
    assert api.get("/server", params={"status": "running", "name": made["name"]}).json() == []
    assert len(api.get("/server", params={"page": 2, "page_size": 1000}).json()) == 0

    # the image is in use; its system volume is in use
    refused(api.delete("/image/delete", params={"image_ref": image["image_ref"]}), 400, "ImageInUse")
    volumes = api.get("/volume").json()["volumes"]
    system = next(v for v in volumes if v["server_ref"] == made["id"] and v["type"] == 0)
    refused(api.delete("/volume/delete", params={"volume_ref": system["uuid"]}), 409, "VolumeInUse")
    refused(api.post("/server/reboot", params={"server_ref": made["id"]}), 400, "InvalidOperation")

    assert api.delete("/server/delete", params={"server_ref": str(mine["id"])}).json() == {"result": True}
    refused(api.get(f"/server/{made['id']}"), 404, "ServerNotFound")
    assert api.delete("/image/delete", params={"image_ref": image["image_ref"]}).json() == {"result": True}


def test_servers_page_newest_first_in_the_database(api, root):
    """Pages of the name-filtered list, newest first (ties in creation time by id, newest
    first too): as the list reversed in memory used to be."""
    image = create(api, root)
    tag = f"pg{next(_counter)}x"
    system = [{"name": "sys", "size": 1, "type": 0, "image_ref": image["image_ref"]}]
    made = []
    for n in range(5):
        resp = api.post("/server/create", json=server_spec(image["image_ref"], name=f"{tag}-{n}", volumes=system))
        assert resp.status_code == 200, resp.text
        made.append(resp.json()["id"])
        if n == 1:
            time.sleep(1.1)       # creation times are in seconds: some the same, some not
    try:
        whole = api.get("/server", params={"name": tag, "page_size": 1000}).json()
        assert {s["uuid"] for s in whole} == set(made)
        newest_first = sorted(whole, key=lambda s: (s["created_at"], s["uuid"]), reverse=True)
        assert whole == newest_first
        pages = [api.get("/server", params={"name": tag.upper(), "page": n, "page_size": 2}).json()
                 for n in (1, 2, 3, 4)]
        assert [len(p) for p in pages] == [2, 2, 1, 0]
        assert [s for p in pages for s in p] == whole
        stopped = api.get("/server", params={"name": tag, "status": "stopped", "page": 2, "page_size": 3}).json()
        assert stopped == whole[3:]
        assert api.get("/server", params={"name": tag, "status": "running"}).json() == []
        assert api.get("/server", params={"name": f"{tag}-0"}).json() == [s for s in whole if s["uuid"] == made[0]]
    finally:
        for server_id in made:
            api.delete("/server/delete", params={"server_ref": server_id})
        api.delete("/image/delete", params={"image_ref": image["image_ref"]})


@pytest.mark.skipif(not HAS_QEMU, reason="qemu-system-x86_64 is not installed")
def test_server_actions_run_a_real_machine(api, root):
    image = create(api, root)
    made = api.post("/server/create", json=server_spec(image["image_ref"], name=f"vm{next(_counter)}",
                                                       boot=True)).json()
    ref = {"server_ref": made["name"]}
    assert api.get(f"/server/{made['id']}").json()["status"] == "running"
    assert api.post("/server/reboot", params=ref).json() == {"result": True}
    assert api.post("/server/stop", params=ref).json() == {"result": True}
    assert api.get(f"/server/{made['id']}").json()["status"] == "stopped"
    assert api.post("/server/start", params=ref).json() == {"result": True}
    assert api.post("/server/destroy", params=ref).json() == {"result": True}
    refused(api.post("/server/start", params=ref), 404, "ServerNotFound")


def test_server_create_refusals(api, root):
    image = create(api, root)
    ref = image["image_ref"]
    refused(api.post("/server/create", json=server_spec(ref, cpu=0)), 400, "InvalidCPUCore")
    refused(api.post("/server/create", json=server_spec(ref, memory=-5)), 400, "InvalidMemorySize")
    refused(api.post("/server/create", json=server_spec("img-000000000000")), 404, "ImageNotFound")
    refused(api.post("/server/create", json=server_spec(ref, volumes=[{"size": 1, "type": 1}])),
            400, "InvalidParameter")
    refused(api.post("/server/create", json=server_spec(ref, volumes=[{"size": 0, "type": 0, "image_ref": ref}])),
            400, "InvalidDiskSize")
    refused(api.post("/server/create", json=server_spec(ref, volumes=[{"size": 1, "type": 7, "image_ref": ref}])),
            400, "InvalidDiskType")
    refused(api.post("/server/create", json={}), 400, "InvalidParameter")
    for action in ("start", "stop", "reboot", "destroy"):
        refused(api.post(f"/server/{action}", params={"server_ref": "i-missing"}), 404, "ServerNotFound")
        refused(api.post(f"/server/{action}"), 400, "InvalidParameter")
    refused(api.delete("/server/delete", params={"server_ref": "i-missing"}), 404, "ServerNotFound")
    refused(api.get("/server", params={"status": "flying"}), 400, "InvalidParameter")
    refused(api.get("/server", params={"page": 0}), 400, "InvalidParameter")


def test_volume_routes(api):
    made = api.post("/volume/create", json={"name": "vol-a", "type": 1, "size": 2, "comment": "c"})
    assert made.status_code == 200, made.text
    volume = made.json()
    assert isinstance(volume["id"], int) and volume["size"] == 2 and volume["type"] == 1
    assert set(volume) >= {"id", "name", "type", "size", "save_path", "comment", "created_at"}
    listed = api.get("/volume").json()["volumes"]
    assert listed[0]["uuid"] == volume["uuid"]           # newest first
    refused(api.post("/volume/create", json={"name": "x", "type": 1, "size": 0}), 400, "InvalidDiskSize")
    refused(api.post("/volume/create", json={"name": "x", "type": 3, "size": 1}), 400, "InvalidDiskType")
    refused(api.delete("/volume/delete", params={"volume_ref": "vol-missing"}), 404, "VolumeNotFound")
    assert api.delete("/volume/delete", params={"volume_ref": str(volume["id"])}).json() == {"success": True}
    refused(api.delete("/volume/delete", params={"volume_ref": volume["uuid"]}), 404, "VolumeNotFound")
