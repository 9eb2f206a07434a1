"""The in-stream inspector on real images made by qemu-img."""

import pytest

from vmimage.imaging.inspector import OsloContentInspector


def inspect(path, chunk=65536):
    inspector = OsloContentInspector()
    data = path.read_bytes()
    for i in range(0, len(data), chunk):
        inspector.feed(data[i:i + chunk])
    return inspector.report()


def test_qcow2_detected_with_virtual_size(images_dir):
    r = inspect(images_dir / "disk.qcow2", chunk=4096)
    assert r.formats == ["qcow2"] and r.virtual_sizes["qcow2"] == 64 << 20 and not r.safety_failures


@pytest.mark.parametrize("name,failure", [("backing.qcow2", "qcow2.backing_file"),
                                          ("datafile.qcow2", "qcow2.data_file"),
                                          ("encrypted.qcow2", "qcow2.encryption")])
def test_unsafe_qcow2(images_dir, name, failure):
    assert failure in inspect(images_dir / name).safety_failures


def test_vmdk_with_host_extent_fails(images_dir):
    r = inspect(images_dir / "hostfile.vmdk")
    assert r.formats == ["vmdk"] and r.safety_failures


def test_vhdx_in_large_chunks_finds_its_metadata(tmp_path):
    # The metadata region lies inside the first 4 MiB chunk, which also holds the region
    # table that points at it (the upload path hands the inspector 4 MiB buffers).
    import subprocess
    raw, vhdx = tmp_path / "d.raw", tmp_path / "d.vhdx"
    raw.write_bytes(b"\1" * (4 << 20))
    subprocess.run(["qemu-img", "convert", "-f", "raw", "-O", "vhdx", str(raw), str(vhdx)], check=True)
    r = inspect(vhdx, chunk=4 << 20)
    assert r.formats == ["vhdx"] and r.virtual_sizes["vhdx"] == 4 << 20 and not r.safety_failures
