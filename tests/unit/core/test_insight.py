"""Image insight's rules (core/insight.py) on facts as the reader gives them, and the reader's
child process on files that are not what they claim."""

from __future__ import annotations

import time

import pytest

from vmimage.core import insight
from vmimage.core.errors import BackendUnavailable, InspectionFailed
from vmimage.core.ports import RangedSource
from vmimage.core.images import BootMode, Image, OsFamily
from vmimage.imaging.insight_reader import ChildGuestReader

DEBIAN = 'PRETTY_NAME="Debian GNU/Linux 12 (bookworm)"\nNAME="Debian GNU/Linux"\nVERSION_ID="12"\nID=debian\n'


def facts(**root) -> dict:
    base = {"os_release": DEBIAN, "architecture": "x86_64", "hostname": "h\n",
            "kernels": [{"version": "6.1.0-18-amd64", "drivers": {"virtio_blk": "module", "virtio_net": "built-in"}}],
            "present": {"/boot/grub/grub.cfg": True, "/usr/bin/cloud-init": True, "/usr/sbin/sshd": True},
            "fstab": "UUID=aaaa / ext4 defaults 0 1\nproc /proc proc defaults 0 0\n",
            "free_bytes": 1 << 30, "total_bytes": 2 << 30}
    base.update(root)
    return {"virtual_size": 2 << 30, "partition_table": "gpt", "mbr_boot_code": False, "errors": [],
            "partitions": [{"number": 1, "bios_boot": True}, {"number": 2, "type": "ext4", "uuid": "AAAA", "label": "root"}],
            "root": base}


def checks(report: dict) -> dict[str, str]:
    return {c["name"]: c["result"] for c in report["checks"]}


def test_os_release_parsing_and_catalogue_names():
    assert insight.parse_os_release('ID="openEuler"\n# c\nVERSION_ID=22.03\nBAD\nX=\'a b\'\n') == {
        "ID": "openEuler", "VERSION_ID": "22.03", "X": "a b"}
    assert insight.catalogue_entry("debian", "12", 64) == "Debian GNU/Linux 12.0.0 64bit"
    assert insight.catalogue_entry("ubuntu", "22.04", 64) == "Ubuntu 22.04 server 64bit"
    assert insight.catalogue_entry("alpine", "3.19", 64) is None


def test_a_debian_root_passes_every_check_and_fills_the_unset_fields():
    report = insight.make_report(facts(), {})
    assert set(checks(report).values()) == {"pass"}
    os_ = report["os"]
    assert (os_["distribution"], os_["version"], os_["boot_mode"], os_["os_version"], os_["hostname"]) == (
        "debian", "12", "bios", "Debian GNU/Linux 12.0.0 64bit", "h")
    image = Image("i", "p", architecture="aarch64")
    filled = insight.fill(image, report)
    assert image.architecture == "aarch64" and "architecture" not in filled      # the user's stays
    assert (image.os_distribution, image.os_release, image.os_family, image.boot_mode) == (
        "debian", "12", OsFamily.LINUX, BootMode.BIOS)
    assert image.os_version == "Debian GNU/Linux 12.0.0 64bit"


def test_declared_values_that_disagree_are_a_warning():
    declared = {"architecture": "arm64", "os_version": "CentOS 7.9 64bit", "boot_mode": "bios"}
    report = insight.make_report(facts(), declared)
    assert checks(report)["declared_os"] == "warn"
    assert {d["field"] for d in report["mismatches"]} == {"architecture", "os_version"}


def test_what_is_missing_warns_or_fails():
    report = insight.make_report(facts(kernels=[], present={}, fstab="/dev/sda1 / ext4 defaults 0 1\n",
                                       free_bytes=1 << 20), {})
    result = checks(report)
    assert (result["virtio_drivers"], result["boot_loader"], result["cloud_init"], result["ssh_server"],
            result["fstab"], result["root_free_space"]) == ("warn", "fail", "warn", "warn", "warn", "warn")
    lacking = facts(kernels=[{"version": "5", "drivers": {"virtio_blk": None, "virtio_net": "module"}}],
                    fstab="LABEL=gone /data ext4 defaults 0 2\nLABEL=opt /opt ext4 nofail 0 2\n")
    result = checks(insight.make_report(lacking, {}))
    assert (result["virtio_drivers"], result["fstab"]) == ("fail", "fail")


def test_boot_mode_and_partitions_past_the_disk():
    uefi = facts()
    uefi["partitions"] = [{"number": 1, "esp": True}, {"number": 2, "type": "ext4"}]
    assert insight.make_report(uefi, {})["os"]["boot_mode"] == "uefi"
    beyond = facts()
    beyond["partitions"].append({"number": 3, "beyond_disk": True})
    assert checks(insight.make_report(beyond, {}))["partitions_within_disk"] == "fail"


def test_a_centos_release_comes_from_redhat_release():
    centos = facts(os_release='ID="centos"\nVERSION_ID="7"\n', redhat_release="CentOS Linux release 7.9.2009 (Core)")
    assert insight.make_report(centos, {})["os"]["os_version"] == "CentOS 7.9 64bit"


def test_the_reader_refuses_what_it_cannot_read(tmp_path):
    reader = ChildGuestReader()
    with pytest.raises(InspectionFailed, match="not vmdk"):
        reader.read(str(tmp_path / "x"), "vmdk")
    bogus = tmp_path / "bogus.qcow2"
    bogus.write_bytes(b"not a disk" * 100)
    with pytest.raises(InspectionFailed, match="not a qcow2 file"):
        reader.read(str(bogus), "qcow2")
    with pytest.raises(InspectionFailed, match="longer than"):     # the wall-clock deadline holds
        ChildGuestReader(wall_seconds=0.001).read(str(bogus), "raw")


# --- reading by ranges (an image in no local file: S3, a web location) ----------------------

def file_ranges(path, where: str = "test store", delay: float = 0.0, fail: Exception | None = None,
                asked: list | None = None) -> RangedSource:
    data = path.read_bytes()

    def read(offset: int, length: int) -> bytes:
        if asked is not None:
            asked.append((offset, length))
        if fail is not None:
            raise fail
        time.sleep(delay)
        return data[offset:offset + length]
    return RangedSource(len(data), read, where)


@pytest.fixture(scope="module")
def small_disk(tmp_path_factory):
    from tests.guest_images import os_disk
    return os_disk(tmp_path_factory.mktemp("ranges"), "ubuntu")


def test_ranges_read_what_the_file_reads_fetching_aligned_blocks(small_disk):
    reader = ChildGuestReader(block_bytes=64 << 10)
    asked: list[tuple[int, int]] = []
    by_file = reader.read(str(small_disk), "qcow2")
    by_ranges = reader.read(file_ranges(small_disk, asked=asked), "qcow2")
    assert by_ranges.pop("read_from") == "test store"
    fetched = by_ranges.pop("bytes_fetched")
    assert by_ranges == by_file and by_file["root"]["os_release"]
    assert fetched == sum(length for _, length in asked) and fetched < small_disk.stat().st_size / 2
    assert all(offset % (64 << 10) == 0 for offset, _ in asked)        # whole blocks
    assert len(set(asked)) == len(asked)                               # each fetched once (the cache)


def test_a_stalled_store_ends_the_reading_at_its_deadline(small_disk):
    started = time.monotonic()
    with pytest.raises(InspectionFailed, match="longer than 1 s"):
        ChildGuestReader(wall_seconds=1).read(file_ranges(small_disk, delay=30), "qcow2")
    assert time.monotonic() - started < 5


def test_a_failing_store_or_too_many_bytes_fail_the_reading(small_disk):
    failing = file_ranges(small_disk, fail=BackendUnavailable("Store 'obj' did not answer"))
    with pytest.raises(InspectionFailed, match="in test store could not be read: Store 'obj' did not answer"):
        ChildGuestReader().read(failing, "qcow2")
    with pytest.raises(InspectionFailed, match="could not be read: OSError: connection reset"):
        ChildGuestReader().read(file_ranges(small_disk, fail=OSError("connection reset")), "raw")
    with pytest.raises(InspectionFailed, match="more than 131072 bytes fetched from test store"):
        ChildGuestReader(block_bytes=64 << 10, max_fetched_bytes=128 << 10).read(file_ranges(small_disk), "qcow2")


def test_a_source_shorter_than_it_says_reads_zeros_not_a_hang(tmp_path):
    short = tmp_path / "short.raw"
    short.write_bytes(bytes(4096))
    source = RangedSource(64 << 20, file_ranges(short).read)
    facts = ChildGuestReader(wall_seconds=20).read(source, "raw")
    assert facts["partition_table"] == "none" and not facts.get("root")
