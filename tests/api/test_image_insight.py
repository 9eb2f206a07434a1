"""Image insight against a real server: images made without mounting anything (tests/guest_images.py)
are uploaded, read by the inspection job, and every face shows what was found, filling only
what the user left unset: Glance through openstacksdk, IMS through huaweicloudsdkims, JD through
jdcloud-sdk, Aries and the native API over HTTP, and the CLI. Hostile filesystems end their
inspection as "inspection failed: ..." or a true reading; the image stays usable."""

from __future__ import annotations

import json
import shutil
import struct
import subprocess
import time
import uuid
from pathlib import Path

import httpx
import pytest
from jdcloud_sdk.services.vm.apis.DescribeImagesRequest import DescribeImagesParameters, DescribeImagesRequest

from tests.api.test_huawei_ims import Key, m
from tests.api.test_jdcloud import access_key, describe, vm_client
from tests.conftest import VMIMAGE, sdk_connect
from tests.guest_images import (BIOS_BOOT_TYPE, LINUX_TYPE, LVM_TYPE, MiB, OS_RELEASES, debian_disk, fake_root, gpt_disk, lvm_pv, make_ext4,
                                make_xfs, os_disk, to_qcow2)

V1 = "/vmimage/v1"
OCTET = {"Content-Type": "application/octet-stream"}
PATCH = {"Content-Type": "application/openstack-images-v2.1-json-patch"}
needs_xfsprogs = pytest.mark.skipif(shutil.which("mkfs.xfs") is None, reason="xfsprogs is not installed")
needs_debootstrap = pytest.mark.skipif(shutil.which("debootstrap") is None, reason="debootstrap is not installed")


def upload(server, path: Path, name: str, persona: str = "demo", **attributes) -> str:
    with server.client(persona) as http:
        made = http.post("/v2/images", json={"name": name, "disk_format": "qcow2", "container_format": "bare",
                                             **attributes})
        assert made.status_code == 201, made.text
        image_id = made.json()["id"]
        with path.open("rb") as f:
            put = http.put(f"/v2/images/{image_id}/file", content=f, headers=OCTET, timeout=300)
        assert put.status_code == 204, put.text
    return image_id


def insight_of(server, image_id: str, timeout: float = 180) -> dict:
    """The insight once its inspection ended."""
    deadline = time.monotonic() + timeout
    with server.client("demo") as http:
        while True:
            resp = http.get(f"{V1}/images/{image_id}/insight")
            assert resp.status_code == 200, resp.text
            found = resp.json()["insight"]
            if found["status"] in ("done", "failed"):
                return found
            assert time.monotonic() < deadline, f"inspection of {image_id} did not end: {found}"
            time.sleep(0.2)


def checks(found: dict) -> dict[str, str]:
    return {c["name"]: c["result"] for c in found["report"]["checks"]}


def glance(server, image_id: str) -> dict:
    with server.client("demo") as http:
        return http.get(f"/v2/images/{image_id}").json()


# --- hand-made roots: each dialect's mapping --------------------------------------------------

@pytest.fixture(scope="module")
def trees(tmp_path_factory) -> dict[str, Path]:
    work = tmp_path_factory.mktemp("trees")
    disks = {}
    for distro in ("ubuntu", "openeuler", "alpine"):
        fstab = "LABEL=root / ext4 defaults 0 1\n/dev/sda15 /boot/efi vfat defaults 0 0\n" \
            if distro == "ubuntu" else "LABEL=root / ext4 defaults 0 1\n"
        disks[distro] = os_disk(work, distro, fstab=fstab)
    return disks


@pytest.fixture(scope="module")
def centos_disk(tmp_path_factory) -> Path:
    work = tmp_path_factory.mktemp("centos")
    tree = fake_root(work / "tree", "centos", fstab="LABEL=root / ext4 defaults 0 1\n")
    (tree / "etc/redhat-release").write_text("CentOS Linux release 7.9.2009 (Core)\n")
    fs = make_ext4(tree, work / "root.ext4", 64 * MiB, label="root")
    raw = gpt_disk(work / "c.raw", 128 * MiB, [(BIOS_BOOT_TYPE, MiB, "BIOS boot"), (LINUX_TYPE, fs, "root")])
    return to_qcow2(raw, work / "centos.qcow2")


EXPECTED = {   # distro: (os_distro, os_version, IMS __os_version, IMS __platform)
    "ubuntu": ("ubuntu", "22.04", "Ubuntu 22.04 server 64bit", "Ubuntu"),
    "openeuler": ("openeuler", "22.03", "openEuler 22.03 64bit", "openEuler"),
    "alpine": ("alpine", "3.19.1", "Other Linux(64 bit)", "Other"),
}


@pytest.mark.parametrize("distro", sorted(EXPECTED))
def test_each_distribution_maps_to_every_dialect(server, trees, distro):
    image_id = upload(server, trees[distro], f"insight-{distro}")
    found = insight_of(server, image_id)
    assert found["status"] == "done", found
    os_distro, os_version, ims_version, ims_platform = EXPECTED[distro]
    report = found["report"]
    assert report["os"]["distribution"] == os_distro and report["os"]["version"] == os_version
    assert (report["os"]["architecture"], report["os"]["boot_mode"]) == ("x86_64", "uefi")
    assert report["os"]["kernels"] == ["6.1.0-18-amd64"] and report["os"]["hostname"] == f"{distro}-guest"
    assert set(found["filled"]) >= {"os_distribution", "os_release", "os_family", "architecture", "boot_mode"}

    conn = sdk_connect(server)
    image = conn.image.get_image(image_id)
    props = {**image.properties, "os_distro": image.os_distro, "os_version": image.os_version,
             "architecture": image.architecture}
    assert (props["os_distro"], props["os_version"], props["architecture"], props["hw_firmware_type"]) == (
        os_distro, os_version, "x86_64", "uefi")
    assert glance(server, image_id)["os_type"] == "linux"

    ims = Key(server, "demo").client()
    shown = ims.glance_show_image(m.GlanceShowImageRequest(image_id=image_id))
    assert (shown.os_version, shown.platform, shown.os_type, shown.os_bit) == (ims_version, ims_platform, "Linux", "64")
    assert (shown.is_config_init, shown.support_kvm) == ("true", "true")

    with httpx.Client(base_url=server.url, headers={"Authorization": f"Bearer {server.token('demo')}"}) as aries:
        listed = aries.get("/aries/api/v1/image/list").json()
    (shown_by_aries,) = [i for i in listed if i["name"] == f"insight-{distro}"]
    assert (shown_by_aries["os_type"], shown_by_aries["os_name"]) == ("linux", os_distro)


def test_centos_minor_release_from_redhat_release_and_bios_boot(server, centos_disk):
    image_id = upload(server, centos_disk, "insight-centos")
    found = insight_of(server, image_id)
    assert found["status"] == "done", found
    assert (found["report"]["os"]["distribution"], found["report"]["os"]["version"]) == ("centos", "7.9")
    assert found["report"]["os"]["boot_mode"] == "bios"
    assert checks(found)["boot_loader"] == "pass"
    ims = Key(server, "demo").client()
    shown = ims.glance_show_image(m.GlanceShowImageRequest(image_id=image_id))
    assert (shown.os_version, shown.platform) == ("CentOS 7.9 64bit", "CentOS")
    jd = vm_client(server, access_key(server, "demo"))
    jd_image = describe(jd, _ref(server, image_id)).result["image"]
    assert (jd_image["platform"], jd_image["osVersion"], jd_image["architecture"], jd_image["bootMode"]) == (
        "CentOS", "7.9", "x86_64", "bios")


def _ref(server, image_id: str) -> str:
    """The caller-facing ref (img-...) JD names an image by, from the native API's image list."""
    with server.client("demo") as http:
        body = http.get(f"/v2/images/{image_id}").json()
    jd = vm_client(server, access_key(server, "demo"))
    params = DescribeImagesParameters("cn-north-1")
    params.setImageSource("private")
    params.setPageSize(100)
    listed = jd.send(DescribeImagesRequest(params)).result["images"]
    (ref,) = [i["imageId"] for i in listed if i["name"] == body["name"]]
    return ref


def test_checks_report_what_is_missing_and_fstab_device_names(server, trees):
    found = insight_of(server, upload(server, trees["ubuntu"], "insight-ubuntu-fstab"))
    result = checks(found)
    assert result["fstab"] == "warn" and "/dev/sda15" in next(
        c["reason"] for c in found["report"]["checks"] if c["name"] == "fstab")
    assert {result[k] for k in ("virtio_drivers", "boot_loader", "cloud_init", "ssh_server",
                                "partitions_within_disk", "declared_os")} == {"pass"}
    assert result["root_free_space"] == "warn"      # a 96 MiB root has less than 256 MiB free


def test_a_bare_root_warns_and_fails_its_checks(server, tmp_path):
    disk = os_disk(tmp_path, "alpine", kernel=None, cloud_init=False, ssh=False,
                   fstab="UUID=0000dead-0000-0000-0000-000000000000 / ext4 defaults 0 1\n")
    found = insight_of(server, upload(server, disk, "insight-bare"))
    assert found["status"] == "done"
    result = checks(found)
    assert (result["virtio_drivers"], result["boot_loader"], result["cloud_init"], result["ssh_server"],
            result["fstab"]) == ("warn", "fail", "warn", "warn", "fail")
    ims = Key(server, "demo").client()
    shown = ims.glance_show_image(m.GlanceShowImageRequest(image_id=found["image_id"]))
    assert (shown.is_config_init, shown.support_kvm) == ("false", "false")


def test_declared_values_stay_and_the_mismatch_is_reported(server, trees, tmp_path):
    image_id = upload(server, trees["ubuntu"], "insight-declared", architecture="aarch64", hw_firmware_type="bios",
                      os_distro="centos")
    found = insight_of(server, image_id)
    assert found["status"] == "done"
    fields = {d["field"]: d for d in found["report"]["mismatches"]}
    assert fields["architecture"]["declared"] == "aarch64" and fields["architecture"]["detected"] == "x86_64"
    assert fields["boot_mode"]["declared"] == "bios" and fields["boot_mode"]["detected"] == "uefi"
    assert checks(found)["declared_os"] == "warn"
    body = glance(server, image_id)
    # declared: never overwritten (os_distro is the user's own property); unset: filled
    assert (body["architecture"], body["hw_firmware_type"], body["os_distro"]) == ("aarch64", "bios", "centos")
    assert body["os_version"] == "22.04" and "architecture" not in found["filled"]
    # the CLI prints the whole report, the mismatch included
    out = subprocess.run([*VMIMAGE, "image", "insight", image_id, "--url", server.url, "--user", "demo",
                          "--password", "demo", "--project", "demo"], capture_output=True, text=True,
                         timeout=60, env=server.env)
    assert out.returncode == 0, out.stderr
    assert json.loads(out.stdout)["report"]["mismatches"] and "declared_os" in out.stderr


def test_reinspection_by_cli_and_user_changes_win(server, trees):
    image_id = upload(server, trees["openeuler"], "insight-again")
    insight_of(server, image_id)
    with server.client("demo") as http:       # the user now declares the release: it is theirs
        resp = http.patch(f"/v2/images/{image_id}", headers=PATCH,
                          json=[{"op": "replace", "path": "/architecture", "value": "aarch64"}])
        assert resp.status_code == 200, resp.text
    out = subprocess.run([*VMIMAGE, "image", "inspect", image_id, "--url", server.url, "--user", "demo",
                          "--password", "demo", "--project", "demo"], capture_output=True, text=True,
                         timeout=120, env=server.env)
    assert out.returncode == 0, out.stderr
    again = json.loads(out.stdout)
    assert again["status"] == "done" and "architecture" not in again["filled"]
    assert glance(server, image_id)["architecture"] == "aarch64"
    assert again["report"]["mismatches"][0]["field"] == "architecture"


# --- a real Debian, debootstrapped ------------------------------------------------------------

@pytest.fixture(scope="module")
def debian_full() -> Path:
    return debian_disk(full=True)


@needs_debootstrap
def test_debian_through_openstacksdk_ims_and_jd(server, debian_full):
    conn = sdk_connect(server)
    image = conn.image.create_image(name="debian-insight", filename=str(debian_full), disk_format="qcow2",
                                    container_format="bare", wait=True, timeout=300)
    found = insight_of(server, image.id)
    assert found["status"] == "done", found
    image = conn.image.get_image(image.id)
    assert (image.os_distro, image.os_version, image.architecture, image.properties["hw_firmware_type"]) == (
        "debian", "12", "x86_64", "bios")
    report = found["report"]
    assert report["os"]["hostname"] == "debian-insight" and report["os"]["kernels"][0].endswith("-amd64")
    assert checks(found) == {"partitions_within_disk": "pass", "virtio_drivers": "pass", "boot_loader": "pass",
                             "fstab": "pass", "cloud_init": "pass", "ssh_server": "pass", "root_free_space": "pass",
                             "declared_os": "pass"}, report["checks"]
    # reading took a small part of the image
    assert report["bytes_read"] < 0.1 * debian_full.stat().st_size

    ims = Key(server, "demo").client()
    shown = ims.glance_show_image(m.GlanceShowImageRequest(image_id=image.id))
    assert (shown.os_version, shown.platform, shown.os_type, shown.os_bit) == (
        "Debian GNU/Linux 12.0.0 64bit", "Debian", "Linux", "64")
    assert (shown.is_config_init, shown.support_kvm) == ("true", "true")
    jd = vm_client(server, access_key(server, "demo"))
    jd_image = describe(jd, _ref(server, image.id)).result["image"]
    assert (jd_image["platform"], jd_image["osVersion"], jd_image["architecture"], jd_image["bootMode"]) == (
        "Debian", "12", "x86_64", "bios")


@needs_debootstrap
def test_a_minimal_debian_has_no_kernel_loader_or_agents(server):
    found = insight_of(server, upload(server, debian_disk(full=False), "debian-minimal"))
    assert found["status"] == "done", found
    assert (found["report"]["os"]["distribution"], found["report"]["os"]["version"]) == ("debian", "12")
    result = checks(found)
    assert (result["virtio_drivers"], result["boot_loader"], result["cloud_init"], result["ssh_server"]) == (
        "warn", "fail", "warn", "warn")


# --- hostile images ---------------------------------------------------------------------------

def _disk_of(work: Path, tree: Path | None, *, fs_size: int = 64 * MiB, part_size: int | None = None,
             mangle=None) -> Path:
    fs = make_ext4(tree, work / "root.ext4", fs_size, label="root")
    if mangle is not None:
        mangle(fs)
    if part_size is not None:        # the partition is smaller than the filesystem says it is
        with fs.open("r+b") as f:
            f.truncate(part_size)
    raw = gpt_disk(work / "disk.raw", 128 * MiB, [(LINUX_TYPE, fs, "root")])
    return to_qcow2(raw, work / "disk.qcow2")


def _corrupt_superblock(fs: Path) -> None:
    with fs.open("r+b") as f:          # magic kept, geometry nonsense: a misreading waiting to happen
        f.seek(1024 + 24)
        f.write(struct.pack("<I", 40))          # block size 2^50
        f.seek(1024 + 40)
        f.write(struct.pack("<I", 0))           # no inodes per group


def _hostile(kind: str, work: Path) -> Path:
    tree = fake_root(work / "tree", "ubuntu", fstab="LABEL=root / ext4 defaults 0 1\n")
    if kind == "corrupt_superblock":
        return _disk_of(work, tree, mangle=_corrupt_superblock)
    if kind == "claims_more_than_the_disk":
        return _disk_of(work, tree, fs_size=96 * MiB, part_size=32 * MiB)
    if kind == "symlink_loops":
        (tree / "etc/os-release").unlink()
        (tree / "usr/lib/os-release").unlink()
        (tree / "etc/os-release").symlink_to("os-release.d/../os-release")
        (tree / "usr/lib/os-release").symlink_to("../lib/os-release")        # itself, through usr/lib
        (tree / "etc/redhat-release").write_text("CentOS Linux release 7.9.2009 (Core)\n")
        (tree / "usr/lib/modules").rename(tree / "usr/lib/modules.real")
        (tree / "usr/lib/modules").symlink_to("../../lib/modules")        # /lib -> usr/lib: a loop
        return _disk_of(work, tree)
    if kind == "escaping_symlinks":
        (tree / "etc/os-release").unlink()
        (tree / "usr/lib/os-release").unlink()
        (tree / "etc/guest-os-release").write_text(OS_RELEASES["alpine"])
        (tree / "etc/os-release").symlink_to("../../../../../../../../../etc/guest-os-release")
        (tree / "etc/hostname").unlink()
        (tree / "etc/hostname").symlink_to("../../../../../../etc/hostname")   # the host's, were it followed out
        return _disk_of(work, tree)
    if kind == "huge_sparse_files":
        (tree / "etc/fstab").unlink()
        with (tree / "etc/fstab").open("wb") as f:
            f.truncate(16 << 30)
        with (tree / "usr/lib/os-release").open("a") as f:
            f.write("X=" + "y" * (3 << 20) + "\n")
        return _disk_of(work, tree)
    raise AssertionError(kind)


@pytest.mark.parametrize("kind, outcome", [
    ("corrupt_superblock", "inspection failed: no root filesystem"),
    ("claims_more_than_the_disk", "inspection failed: no root filesystem"),
    ("symlink_loops", "centos 7.9"),
    ("escaping_symlinks", "alpine 3.19.1"),
    ("huge_sparse_files", "ubuntu 22.04"),
])
def test_hostile_filesystems_fail_or_read_true_and_nothing_else(server, tmp_path, kind, outcome):
    disk = _hostile(kind, tmp_path)
    image_id = upload(server, disk, f"hostile-{kind}")
    found = insight_of(server, image_id)
    if outcome.startswith("inspection failed"):
        assert found["status"] == "failed" and found["error"].startswith(outcome), found
        detail = {"corrupt_superblock": "not possible", "claims_more_than_the_disk": "claims"}[kind]
        assert detail in found["error"]
    else:
        assert found["status"] == "done", found
        os_ = found["report"]["os"]
        assert f"{os_['distribution']} {os_['version']}" == outcome
        if kind == "escaping_symlinks":
            assert os_["hostname"] is None      # the host's /etc/hostname was not read
        if kind == "symlink_loops":
            assert checks(found)["virtio_drivers"] == "warn"
    # the image stays active and whole; the service answers
    body = glance(server, image_id)
    assert body["status"] == "active"
    with server.client("demo") as http:
        data = http.get(f"/v2/images/{image_id}/file").content
    assert data == disk.read_bytes()


# --- XFS roots: what CentOS, RHEL, openEuler and Rocky cloud images use ------------------------

def _xfs_disk(work: Path, tree: Path, *, v4: bool = False, mangle=None) -> Path:
    extra = ("-m", "crc=0", "-i", "size=256") if v4 else ()
    fs = make_xfs(tree, work / "root.xfs", 96 * MiB, label="root", extra=extra)
    if mangle is not None:
        mangle(fs)
    raw = gpt_disk(work / "disk.raw", 160 * MiB, [(BIOS_BOOT_TYPE, MiB, "BIOS boot"), (LINUX_TYPE, fs, "root")])
    return to_qcow2(raw, work / "disk.qcow2")


def _xfs_db(fs: Path, *commands: str) -> str:
    args = ["xfs_db", "-x"]
    for c in commands:
        args += ["-c", c]
    done = subprocess.run([*args, str(fs)], check=True, capture_output=True, text=True)
    assert "not found" not in done.stdout + done.stderr and "error" not in done.stdout + done.stderr, done
    return done.stdout


@needs_xfsprogs
def test_an_xfs_openeuler_root_maps_to_every_dialect(server, tmp_path):
    tree = fake_root(tmp_path / "tree", "openeuler", fstab="LABEL=root / xfs defaults 0 0\n")
    for i in range(300):                     # a leaf-format directory on the way
        (tree / "usr/lib" / f"filler-{i:04d}").write_text("x")
    image_id = upload(server, _xfs_disk(tmp_path, tree), "insight-xfs-openeuler")
    found = insight_of(server, image_id)
    assert found["status"] == "done", found
    os_ = found["report"]["os"]
    assert (os_["distribution"], os_["version"], os_["architecture"], os_["boot_mode"]) == (
        "openeuler", "22.03", "x86_64", "bios")
    assert os_["kernels"] == ["6.1.0-18-amd64"] and os_["hostname"] == "openeuler-guest"
    assert checks(found)["virtio_drivers"] == "pass"
    image = sdk_connect(server).image.get_image(image_id)
    assert (image.os_distro, image.os_version, image.architecture) == ("openeuler", "22.03", "x86_64")
    shown = Key(server, "demo").client().glance_show_image(m.GlanceShowImageRequest(image_id=image_id))
    assert (shown.os_version, shown.platform, shown.os_bit) == ("openEuler 22.03 64bit", "openEuler", "64")


@needs_xfsprogs
def test_an_xfs_v4_centos_root_reads_its_minor_release(server, tmp_path):
    tree = fake_root(tmp_path / "tree", "centos", fstab="LABEL=root / xfs defaults 0 0\n")
    (tree / "etc/redhat-release").write_text("CentOS Linux release 7.9.2009 (Core)\n")
    image_id = upload(server, _xfs_disk(tmp_path, tree, v4=True), "insight-xfs-centos")
    found = insight_of(server, image_id)
    assert found["status"] == "done", found
    assert (found["report"]["os"]["distribution"], found["report"]["os"]["version"]) == ("centos", "7.9")
    assert (glance(server, image_id)["os_distro"], glance(server, image_id)["os_version"]) == ("centos", "7.9")
    shown = Key(server, "demo").client().glance_show_image(m.GlanceShowImageRequest(image_id=image_id))
    assert (shown.os_version, shown.platform) == ("CentOS 7.9 64bit", "CentOS")


@needs_xfsprogs
def test_an_xfs_root_on_lvm_like_rhel(server, tmp_path):
    """RHEL/CentOS/Rocky's default layout: /boot on its own, the root an XFS logical volume."""
    tree = fake_root(tmp_path / "tree", "centos", fstab="/dev/mapper/centos-root / xfs defaults 0 0\n")
    (tree / "etc/redhat-release").write_text("CentOS Linux release 7.9.2009 (Core)\n")
    fs = make_xfs(tree, tmp_path / "root.xfs", 96 * MiB, label="root")
    pv = lvm_pv(tmp_path / "pv.img", {"swap": (16, [(0, None)]), "root": (fs, [(72, 40), (16, None)])},
                vg="centos")
    boot = make_ext4(None, tmp_path / "boot.ext4", 16 * MiB, label="boot")
    raw = gpt_disk(tmp_path / "disk.raw", 160 * MiB, [(BIOS_BOOT_TYPE, MiB, "BIOS boot"), (LINUX_TYPE, boot, "boot"),
                                                      (LVM_TYPE, pv, "lvm")])
    image_id = upload(server, to_qcow2(raw, tmp_path / "disk.qcow2"), "insight-xfs-lvm")
    found = insight_of(server, image_id)
    assert found["status"] == "done", found
    assert (found["report"]["os"]["distribution"], found["report"]["os"]["version"]) == ("centos", "7.9")
    parts = {str(p["number"]): p for p in found["report"]["partitions"]}
    assert parts["centos/root"]["type"] == "xfs" and parts["centos/root"]["root"]
    assert parts["centos/root"]["logical_volume"] and parts["3"]["type"] == "LVM2_member"
    assert checks(found)["partitions_within_disk"].startswith("pass")
    assert (glance(server, image_id)["os_distro"], glance(server, image_id)["os_version"]) == ("centos", "7.9")
    shown = Key(server, "demo").client().glance_show_image(m.GlanceShowImageRequest(image_id=image_id))
    assert (shown.os_version, shown.platform) == ("CentOS 7.9 64bit", "CentOS")


def _xfs_hostile(kind: str, fs: Path) -> None:
    if kind == "corrupt_superblock":
        with fs.open("r+b") as f:             # magic kept, geometry nonsense
            f.seek(4)
            f.write(struct.pack(">I", 3000))                # a block size that is no power of two
    elif kind == "root_inode_past_the_disk":
        _xfs_db(fs, "sb 0", "write -d rootino 999999999999")
    elif kind == "file_extent_past_the_disk":
        _xfs_db(fs, "path /usr/lib/os-release", "write -d u3.bmx[0].startblock 99999999")
    elif kind == "directory_loop":           # /usr/lib/modules names the root directory
        listing = _xfs_db(fs, "path /usr/lib", "p u3.sfdir3")
        index = next(line.split("[")[1].split("]")[0] for line in listing.splitlines() if '"modules"' in line)
        _xfs_db(fs, "path /usr/lib", f"write -d u3.sfdir3.list[{index}].inumber.i4 128")
    else:
        raise AssertionError(kind)


@needs_xfsprogs
@pytest.mark.parametrize("kind, outcome", [
    ("corrupt_superblock", "inspection failed: no root filesystem"),
    ("root_inode_past_the_disk", "inspection failed: no root filesystem"),
    ("file_extent_past_the_disk", "centos 7.9"),
    ("directory_loop", "centos 7"),
])
def test_hostile_xfs_fails_or_reads_true(server, tmp_path, kind, outcome):
    tree = fake_root(tmp_path / "tree", "centos", fstab="LABEL=root / xfs defaults 0 0\n")
    if kind == "file_extent_past_the_disk":
        (tree / "etc/redhat-release").write_text("CentOS Linux release 7.9.2009 (Core)\n")
    disk = _xfs_disk(tmp_path, tree, mangle=lambda fs: _xfs_hostile(kind, fs))
    image_id = upload(server, disk, f"hostile-xfs-{kind}")
    found = insight_of(server, image_id)
    if outcome.startswith("inspection failed"):
        assert found["status"] == "failed" and found["error"].startswith(outcome), found
        detail = {"corrupt_superblock": "block size 3000 is not possible",
                  "root_inode_past_the_disk": "out of range"}[kind]
        assert detail in found["error"], found
    else:
        assert found["status"] == "done", found
        os_ = found["report"]["os"]
        assert f"{os_['distribution']} {os_['version']}" == outcome
        if kind == "file_extent_past_the_disk":
            assert any("past the filesystem's end" in e for e in found["report"]["read_errors"]), found
    assert glance(server, image_id)["status"] == "active"


def test_a_qcow2_whose_tables_lie_fails_its_inspection_only(server, tmp_path, trees):
    disk = tmp_path / "lying.qcow2"
    shutil.copy(trees["ubuntu"], disk)
    with disk.open("r+b") as f:       # the L1 table's first entry points far past the file's end
        f.seek(40)
        l1_offset = struct.unpack(">Q", f.read(8))[0]
        f.seek(l1_offset)
        f.write(struct.pack(">Q", (1 << 63) | (1 << 50)))
    image_id = upload(server, disk, "lying-qcow2")
    found = insight_of(server, image_id)
    assert found["status"] == "failed" and found["error"].startswith("inspection failed: ")
    assert glance(server, image_id)["status"] == "active"


def test_reinspection_route_refusals(server, trees):
    with server.client("demo") as http:
        missing = http.post(f"{V1}/images/{uuid.uuid4()}/insight")
        assert missing.status_code == 404
        queued = http.post("/v2/images", json={"name": "no-data", "disk_format": "qcow2",
                                               "container_format": "bare"}).json()
        assert http.post(f"{V1}/images/{queued['id']}/insight").status_code == 409
        assert http.get(f"{V1}/images/{queued['id']}/insight").json()["insight"]["status"] == "none"
    image_id = upload(server, trees["alpine"], "insight-alien")
    insight_of(server, image_id)
    with server.client("alt") as http:      # another project's private image: not even seen
        assert http.post(f"{V1}/images/{image_id}/insight").status_code == 404


def test_an_image_made_from_a_server_is_inspected_too(server, trees):
    """Images of servers become active through the same door as uploads: theirs is read as well,
    and what the source image declared travels with it (a disagreement stays a warning)."""
    from tests.api.test_servers_and_images import wait_job
    source = upload(server, trees["ubuntu"], "insight-server-source")
    insight_of(server, source)
    with server.client("demo") as http:
        http.timeout = 120
        made = http.post(f"{V1}/servers", json={"name": "insight-machine", "image_id": source, "start": False})
        assert made.status_code == 201, made.text
        srv = made.json()["server"]
        resp = http.post(f"{V1}/servers/{srv['id']}/images", json={"name": "insight-from-server"})
        assert resp.status_code == 202, resp.text
        job = wait_job(http, resp.json()["job"]["id"])
        assert job["status"] == "SUCCESS", job
        (image_id,) = job["entities"]["image_ids"]
    found = insight_of(server, image_id)
    assert found["status"] == "done", found
    assert (found["report"]["os"]["distribution"], found["report"]["os"]["version"]) == ("ubuntu", "22.04")
    assert checks(found)["declared_os"] == "pass"
