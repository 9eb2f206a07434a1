"""The guest reader on real XFS filesystems made by mkfs.xfs from a protofile (nothing mounted):
v4 and v5 superblocks, every directory format (short-form, block, leaf, node; the node one lands
in an extent btree), local and remote symlinks, and hostile edits made with xfs_db: each ends as a
ReadError with its reason or a true reading, never a hang or another exception."""

from __future__ import annotations

import random
import shutil
import struct
import subprocess
from pathlib import Path

import pytest

from tests.guest_images import MiB, fake_root, make_xfs
from vmimage.imaging import guest_reader
from vmimage.imaging.guest_reader import Disk, GuestPathError, ReadError, XfsFs

pytestmark = pytest.mark.skipif(shutil.which("mkfs.xfs") is None, reason="xfsprogs is not installed")

SIZES = {"five": 5, "block": 60, "leaf": 200, "node": 5000}
LONG_LINK = "a" * 600 + "/target"


def entry_name(i: int) -> str:
    return f"entry-{i:05d}-with-a-longer-name"


@pytest.fixture(scope="module")
def images(tmp_path_factory) -> dict[str, Path]:
    work = tmp_path_factory.mktemp("xfs")
    tree = fake_root(work / "tree", "openeuler")
    for name, count in SIZES.items():
        (tree / "var" / name).mkdir()
        for i in range(count):
            (tree / "var" / name / entry_name(i)).write_text(f"{name} {i}\n")
    (tree / "var/data").write_bytes(bytes(range(256)) * 4096 * 3)    # 3 MiB, past the file cap
    (tree / "var/long-link").symlink_to(LONG_LINK)
    return {"v5": make_xfs(tree, work / "v5.xfs", 96 * MiB, label="root"),
            "v4": make_xfs(tree, work / "v4.xfs", 96 * MiB, label="root", extra=("-m", "crc=0", "-i", "size=256")),
            "v4-no-ftype": make_xfs(tree, work / "v4nf.xfs", 96 * MiB, label="root",
                                    extra=("-m", "crc=0", "-n", "ftype=0"))}


def copy(images, version: str, tmp_path: Path) -> Path:
    out = tmp_path / f"{version}.xfs"
    shutil.copyfile(images[version], out)
    return out


def xfs_db(image: Path, *commands: str) -> str:
    args = ["xfs_db", "-x"]
    for c in commands:
        args += ["-c", c]
    done = subprocess.run([*args, str(image)], check=True, capture_output=True, text=True)
    assert "not found" not in done.stdout + done.stderr and "error" not in done.stdout + done.stderr, done
    return done.stdout


def with_remote_link_header(image: Path, path: str) -> None:
    """mkfs.xfs 6.1 writes a v5 protofile link longer than its inode without the block header
    the kernel writes (and its verifier demands); write it as the kernel would: magic, offset,
    length, crc, filesystem uuid, owner inode, disk address, lsn, then the target."""
    fs = XfsFs(Disk(str(image)))
    number, link = fs.lookup(path, follow=False)
    (_logical, block, _count), = fs._mapped(link)
    at = fs._fsb_to_byte(block)
    with image.open("r+b") as f:
        f.seek(at)
        target = f.read(link["size"])
        f.seek(32)
        fs_uuid = f.read(16)
        f.seek(at)
        f.write(struct.pack(">4sIII16sQQQ", b"XSLM", 0, len(target), 0, fs_uuid, number, at // 512, 0) + target)


def dir_block_magic(fs: XfsFs, path: str) -> bytes:
    _n, ino = fs.lookup(path)
    _logical, physical, _count = sorted(fs._mapped(ino))[0]
    return fs._blocks(physical)[:4]


@pytest.mark.parametrize("version", ["v4", "v4-no-ftype", "v5"])
def test_every_directory_format_file_and_link_reads_true(images, tmp_path, version):
    fs = XfsFs(Disk(str(images[version])))
    assert fs.v5 == (version == "v5") and fs.block_size == 4096 and fs.has_ftype == (version != "v4-no-ftype")
    assert fs.read_file("/etc/os-release").startswith(b'NAME="openEuler"')     # a link to ../usr/lib/...
    assert fs.read_file("/bin/sh", 4) == b"\x7fELF"                          # bin -> usr/bin, sh -> dash
    assert fs.listdir("/") == ["bin", "boot", "etc", "lib", "root", "sbin", "tmp", "usr", "var"]
    for name, count in SIZES.items():
        listed = fs.listdir(f"/var/{name}")
        assert listed == sorted(entry_name(i) for i in range(count))
        for i in (0, count // 2, count - 1):
            assert fs.read_file(f"/var/{name}/{entry_name(i)}") == f"{name} {i}\n".encode()
    assert fs.lookup("/var/node")[1]["format"] == 3          # 5000 entries: an extent btree
    assert dir_block_magic(fs, "/var/block") == (b"XDB3" if version == "v5" else b"XD2B")
    assert dir_block_magic(fs, "/var/leaf") == (b"XDD3" if version == "v5" else b"XD2D")
    if version == "v5":
        assert fs.lookup("/var/five")[1]["format"] == 1      # short-form, inside the inode
    assert fs.read_file("/var/data") == (bytes(range(256)) * 4096)[:guest_reader.MAX_FILE_BYTES]
    assert fs.read_file("/var/data", 8 << 20) == bytes(range(256)) * 4096 * 3
    _n, link = fs.lookup("/var/long-link", follow=False)
    assert link["format"] == 2                                              # a remote link
    if version != "v5":
        assert fs.read_link(link) == LONG_LINK
    else:
        with pytest.raises(ReadError, match="without its magic"):          # as mkfs.xfs 6.1 left it
            fs.read_link(link)
        image = copy(images, version, tmp_path)
        with_remote_link_header(image, "/var/long-link")
        fs = XfsFs(Disk(str(image)))
        assert fs.read_link(fs.lookup("/var/long-link", follow=False)[1]) == LONG_LINK
    assert fs.read_file("/var/nothing") is None and not fs.exists("/var/five/../nothing")
    facts = guest_reader.read_root(fs, errors := [])
    assert errors == [] and facts["architecture"] == "x86_64" and facts["kernels"][0]["drivers"] == {
        "virtio_blk": "module", "virtio_net": "built-in"}
    assert 0 < facts["free_bytes"] < facts["total_bytes"] == 96 * MiB


def test_a_lying_superblock_is_refused_with_its_reason(images, tmp_path):
    image = copy(images, "v5", tmp_path)
    with image.open("r+b") as f:
        f.seek(84)
        f.write(struct.pack(">I", 0))                        # no blocks per allocation group
    with pytest.raises(ReadError, match="not possible"):
        XfsFs(Disk(str(image)))
    image = copy(images, "v5", tmp_path)
    with image.open("r+b") as f:
        f.seek(216)
        f.write(struct.pack(">I", 0xB | 0x80000000))         # an incompatible feature nobody knows
    with pytest.raises(ReadError, match="incompatible features 0x80000000"):
        XfsFs(Disk(str(image)))
    image = copy(images, "v4", tmp_path)
    with image.open("r+b") as f:
        f.truncate(48 * MiB)                                 # the filesystem claims more than it has
    with pytest.raises(ReadError, match="claims"):
        XfsFs(Disk(str(image)))
    image = copy(images, "v5", tmp_path)
    xfs_db(image, "sb 0", "write -d rootino 999999999999")
    with pytest.raises(ReadError, match="out of range"):
        XfsFs(Disk(str(image)))


@pytest.mark.parametrize("version", ["v4", "v5"])
def test_an_extent_past_the_disk_is_an_error_not_a_misreading(images, tmp_path, version):
    image = copy(images, version, tmp_path)
    fork = "u3" if version == "v5" else "u"
    xfs_db(image, "path /usr/lib/os-release", f"write -d {fork}.bmx[0].startblock 999999")
    fs = XfsFs(Disk(str(image)))
    with pytest.raises(ReadError, match="past the filesystem's end"):
        fs.read_file("/etc/os-release")
    assert fs.read_file("/etc/hostname") == b"openeuler-guest\n"


def test_a_directory_loop_ends(images, tmp_path):
    image = copy(images, "v5", tmp_path)
    listing = xfs_db(image, "path /usr/lib", "p u3.sfdir3")
    index = next(line.split("[")[1].split("]")[0] for line in listing.splitlines() if '"modules"' in line)
    xfs_db(image, "path /usr/lib", f"write -d u3.sfdir3.list[{index}].inumber.i4 128")   # modules -> the root
    fs = XfsFs(Disk(str(image)))
    assert fs.listdir("/lib/modules/usr/lib/modules/usr/lib/modules") == fs.listdir("/")
    facts = guest_reader.read_root(fs, [])
    assert facts["os_release"].startswith('NAME="openEuler"')


def test_an_extent_btree_that_reaches_a_block_twice_is_refused(images, tmp_path):
    image = copy(images, "v5", tmp_path)
    listing = xfs_db(image, "path /var/node", "p u3.bmbt")
    assert "u3.bmbt.numrecs = 1" in listing
    leaf = listing.split("u3.bmbt.ptrs[1] = ")[1].split()[0]
    xfs_db(image, "path /var/node", "write -d u3.bmbt.numrecs 2", "write -d u3.bmbt.keys[2].startoff 1",
           f"write -d u3.bmbt.ptrs[2] {leaf}")
    fs = XfsFs(Disk(str(image)))
    with pytest.raises(ReadError, match="twice"):
        fs.listdir("/var/node")
    assert fs.read_file("/etc/hostname") == b"openeuler-guest\n"


def test_random_damage_ends_as_an_error_or_a_reading(images, tmp_path):
    """Bytes flipped in the metadata-dense start of each allocation group: the reader returns
    facts or raises one of the errors its child process turns into a reason, nothing else."""
    pristine = images["v5"].read_bytes()
    geometry = XfsFs(Disk(str(images["v5"])))
    rng = random.Random(25)
    for round_ in range(40):
        damaged = bytearray(pristine)
        for _ in range(64):
            ag = rng.randrange(geometry.ag_count)
            at = ag * geometry.ag_blocks * geometry.block_size + rng.randrange(0, 256 << 10)
            damaged[at] = rng.randrange(256)
        image = tmp_path / "damaged.xfs"
        image.write_bytes(bytes(damaged))
        try:
            facts = guest_reader.inspect(str(image), "raw")
        except (ReadError, struct.error) as exc:       # what main() reports as {"error": ...}
            assert str(exc), round_
            continue
        assert isinstance(facts["errors"], list)
        assert facts["bytes_read"] <= guest_reader.MAX_TOTAL_READ


def test_lookup_errors_are_guest_path_errors(images):
    fs = XfsFs(Disk(str(images["v4"])))
    with pytest.raises(GuestPathError):
        fs.lookup("/etc/hostname/below")
