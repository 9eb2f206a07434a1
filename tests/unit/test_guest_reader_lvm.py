"""The guest reader on LVM2: a physical volume written by tests/guest_images.py (LVM's own
`pvck` reads it back: labels, checksums, text), a root LV in two out-of-order linear segments on
a GPT disk, and hostile metadata: each ends as a reason or a true reading."""

from __future__ import annotations

import json
import shutil
import subprocess
from pathlib import Path

import pytest

from tests.guest_images import BIOS_BOOT_TYPE, LVM_TYPE, MiB, fake_root, gpt_disk, lvm_pv, make_ext4, make_xfs
from vmimage.imaging import guest_reader
from vmimage.imaging.guest_reader import ReadError, parse_lvm_config

needs_xfsprogs = pytest.mark.skipif(shutil.which("mkfs.xfs") is None, reason="xfsprogs is not installed")


@pytest.fixture(scope="module")
def root_fs(tmp_path_factory) -> Path:
    work = tmp_path_factory.mktemp("lvm")
    tree = fake_root(work / "tree", "centos")
    (tree / "etc/redhat-release").write_text("CentOS Linux release 7.9.2009 (Core)\n")
    (tree / "var/many").mkdir()
    for i in range(3000):
        (tree / "var/many" / f"file-{i:05d}").write_text(f"{i}\n")
    return make_ext4(tree, work / "root.ext4", 48 * MiB, label="root")


def disk_with(tmp_path: Path, root_fs: Path, **options) -> Path:
    pv = lvm_pv(tmp_path / "pv.img", {"swap": (8, [(0, None)]), "root": (root_fs, [(36, 20), (8, None)])},
                **options)
    return gpt_disk(tmp_path / "disk.raw", 96 * MiB, [(BIOS_BOOT_TYPE, MiB, "BIOS boot"), (LVM_TYPE, pv, "lvm")])


def test_lvm_tools_read_the_written_volume(tmp_path, root_fs):
    if shutil.which("pvck") is None:
        pytest.skip("lvm2 is not installed")
    pv = lvm_pv(tmp_path / "pv.img", {"root": (root_fs, [(0, None)])})
    out = subprocess.run(["pvck", "--dump", "metadata", str(pv)], capture_output=True, text=True, timeout=60)
    assert out.returncode == 0 and "vgname vg0 seqno 3" in out.stdout, out
    assert "bad" not in (out.stdout + out.stderr).lower()


def test_a_root_lv_in_two_segments_reads_true(tmp_path, root_fs):
    facts = guest_reader.inspect(str(disk_with(tmp_path, root_fs)), "raw")
    assert facts["errors"] == []
    lvs = {p["number"]: p for p in facts["partitions"] if p.get("logical_volume")}
    assert lvs["vg0/swap"]["size"] == 8 * MiB and lvs["vg0/root"]["size"] == 48 * MiB
    assert lvs["vg0/root"]["type"] == "ext4" and lvs["vg0/root"]["root"] and lvs["vg0/root"]["label"] == "root"
    assert facts["root"]["redhat_release"].startswith("CentOS Linux release 7.9")
    # every file of a directory whose blocks straddle the segments reads its own bytes
    disk = guest_reader.Disk(str(tmp_path / "disk.raw"))
    _table, parts, _boot = guest_reader.partitions(disk)
    pv_part = next(p for p in parts if p["lvm"])
    pv_dev = guest_reader.Slice(disk, pv_part["start"], pv_part["size"])
    pv = guest_reader.lvm_physical_volume(pv_dev)
    (root,) = [lv for info, lv in guest_reader.logical_volumes({pv["uuid"]: (pv, pv_dev)}, []) if lv.name == "vg0/root"]
    fs = guest_reader.ExtFs(root)
    names = fs.listdir("/var/many")
    assert len(names) == 3000 and all(fs.read_file(f"/var/many/{n}") == f"{int(n[5:])}\n".encode() for n in names)
    assert root.read(0, 48 * MiB) == root_fs.read_bytes()


@needs_xfsprogs
def test_xfs_on_lvm(tmp_path):
    tree = fake_root(tmp_path / "tree", "openeuler")
    fs = make_xfs(tree, tmp_path / "root.xfs", 96 * MiB, label="root")
    pv = lvm_pv(tmp_path / "pv.img", {"root": (fs, [(40, 60), (0, None)])}, vg="openeuler")
    disk = gpt_disk(tmp_path / "disk.raw", 160 * MiB, [(LVM_TYPE, pv, "lvm")])
    facts = guest_reader.inspect(str(disk), "raw")
    assert facts["errors"] == [] and facts["root"]["os_release"].startswith('NAME="openEuler"')
    assert [p["type"] for p in facts["partitions"] if p.get("root")] == ["xfs"]


@pytest.mark.parametrize("edit, reason", [
    (lambda t: t.replace('"pv0", 8', '"pv0", 500'), "past the end of physical volume pv0"),
    (lambda t: t.replace('type = "striped"', 'type = "thin"', 2), "a thin segment (only linear ones are read)"),
    (lambda t: t.replace("extent_count = 20", "extent_count = 19"), "segments that leave gaps or overlap"),
    (lambda t: t.replace('"pv0", 36', '"pv9", 36'), "extents on physical volume pv9, not on this disk"),
    (lambda t: t.replace("pe_count = ", "pe_count = 9"), "claims more extents than its partition holds"),
    (lambda t: t.replace("extent_size = 2048", "extent_size = 0"), "extent size 0 is not possible"),
    (lambda t: t.replace('"pv0", 36', '"pv0", 30'), "two segments claim extent 30 of physical volume pv0"),
    (lambda t: t.replace("logical_volumes {", "logical_volumes {{"), "LVM metadata"),
    (lambda t: t.replace("seqno = 3", "seqno = = 3"), "LVM metadata: '=' is not a value"),
    (lambda t: t[:len(t) // 2], "LVM metadata ends in the middle"),
])
def test_hostile_metadata_ends_with_its_reason(tmp_path, root_fs, edit, reason):
    facts = guest_reader.inspect(str(disk_with(tmp_path, root_fs, edit=edit)), "raw")
    assert "root" not in facts and any(reason in e for e in facts["errors"]), json.dumps(facts["errors"])


def test_metadata_whose_checksum_does_not_match_is_not_used(tmp_path, root_fs):
    disk = disk_with(tmp_path, root_fs)
    with disk.open("r+b") as f:
        f.seek(2 * MiB + 4096 + 512 + 10)       # inside the text, after the checksum was taken
        f.write(b"X")
    facts = guest_reader.inspect(str(disk), "raw")
    assert "root" not in facts and any("checksum does not match" in e for e in facts["errors"])


def test_the_text_format():
    parsed = parse_lvm_config('# c\nvg { a = 1\nb = "x \\"y\\""\nc = [ "p", 2 ]\nd { e = [] } }\nversion = 1\n')
    assert parsed == {"vg": {"a": 1, "b": 'x "y"', "c": ["p", 2], "d": {"e": []}}, "version": 1}
    with pytest.raises(ReadError):
        parse_lvm_config("a { " * 40)
    with pytest.raises(ReadError):
        parse_lvm_config("a = 1 }")
