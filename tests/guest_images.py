"""Real disk images for the insight tests, made without mounting anything: a root tree is
written into an ext4 filesystem image by `mke2fs -d`, placed in a GPT (or MBR) disk written
here byte by byte, and converted to qcow2 with `qemu-img convert -f raw`.

Debian roots come from `debootstrap` (cached under ~/.cache/vmimage-test-images, keyed by the
recipe's hash); the other distributions' trees are small hand-made roots with their real
os-release files, enough to cover the mapping of each dialect.
"""

from __future__ import annotations

import fcntl
import hashlib
import os
import shutil
import struct
import subprocess
import uuid
import zlib
from pathlib import Path
from typing import Callable

MiB = 1 << 20
ESP_TYPE = uuid.UUID("c12a7328-f81f-11d2-ba4b-00a0c93ec93b")
LINUX_TYPE = uuid.UUID("0fc63daf-8483-4772-8e79-3d69d8477de4")
BIOS_BOOT_TYPE = uuid.UUID("21686148-6449-6e6f-744e-656564454649")
CACHE = Path(os.environ.get("VMIMAGE_TEST_IMAGE_CACHE", Path.home() / ".cache" / "vmimage-test-images"))

OS_RELEASES = {
    "ubuntu": 'NAME="Ubuntu"\nVERSION_ID="22.04"\nID=ubuntu\nID_LIKE=debian\nPRETTY_NAME="Ubuntu 22.04.4 LTS"\n'
              'VERSION_CODENAME=jammy\n',
    "centos": 'NAME="CentOS Linux"\nVERSION="7 (Core)"\nID="centos"\nID_LIKE="rhel fedora"\nVERSION_ID="7"\n'
              'PRETTY_NAME="CentOS Linux 7 (Core)"\n',
    "openeuler": 'NAME="openEuler"\nVERSION="22.03 (LTS-SP3)"\nID="openEuler"\nVERSION_ID="22.03"\n'
                 'PRETTY_NAME="openEuler 22.03 (LTS-SP3)"\n',
    "alpine": 'NAME="Alpine Linux"\nID=alpine\nVERSION_ID=3.19.1\nPRETTY_NAME="Alpine Linux v3.19"\n',
    "debian": 'PRETTY_NAME="Debian GNU/Linux 12 (bookworm)"\nNAME="Debian GNU/Linux"\nVERSION_ID="12"\n'
              'VERSION="12 (bookworm)"\nVERSION_CODENAME=bookworm\nID=debian\n',
}
# An x86_64 ELF header, enough for the reader to tell the architecture.
ELF_X86_64 = b"\x7fELF\x02\x01\x01" + bytes(9) + struct.pack("<HH", 2, 0x3E) + bytes(44)


def fake_root(tree: Path, distro: str, *, kernel: str | None = "6.1.0-18-amd64", cloud_init: bool = True,
              ssh: bool = True, fstab: str | None = None, hostname: str | None = None) -> Path:
    """A small root tree with a distribution's real os-release (usr-merged, as today's are)."""
    for d in ("etc", "usr/bin", "usr/sbin", "usr/lib", "boot", "root", "tmp", "var"):
        (tree / d).mkdir(parents=True, exist_ok=True)
    for link, target in (("bin", "usr/bin"), ("sbin", "usr/sbin"), ("lib", "usr/lib")):
        if not (tree / link).is_symlink():
            (tree / link).symlink_to(target)
    (tree / "usr/lib/os-release").write_text(OS_RELEASES[distro])
    (tree / "etc/os-release").symlink_to("../usr/lib/os-release")
    (tree / "usr/bin/dash").write_bytes(ELF_X86_64)
    (tree / "usr/bin/sh").symlink_to("dash")
    (tree / "etc/hostname").write_text((hostname or f"{distro}-guest") + "\n")
    if fstab is not None:
        (tree / "etc/fstab").write_text(fstab)
    if kernel:
        (tree / f"boot/vmlinuz-{kernel}").write_bytes(b"\0" * 4096)
        mods = tree / "usr/lib/modules" / kernel
        (mods / "kernel/drivers/block").mkdir(parents=True)
        (mods / "kernel/drivers/net").mkdir(parents=True)
        (mods / "kernel/drivers/block/virtio_blk.ko.xz").write_bytes(b"\0" * 100)
        (mods / "modules.builtin").write_text("kernel/drivers/net/virtio_net.ko\nkernel/fs/ext4/ext4.ko\n")
        (tree / "boot/grub").mkdir()
        (tree / "boot/grub/grub.cfg").write_text("menuentry 'guest' { linux /boot/vmlinuz root=/dev/vda1 }\n")
    if cloud_init:
        (tree / "usr/bin/cloud-init").write_bytes(ELF_X86_64)
    if ssh:
        (tree / "usr/sbin/sshd").write_bytes(ELF_X86_64)
    return tree


def make_ext4(tree: Path | None, out: Path, size: int, *, label: str = "", fs_uuid: str | None = None,
              extra: tuple[str, ...] = ()) -> Path:
    """An ext4 filesystem image of `tree`, written by mke2fs -d (nothing mounted)."""
    cmd = ["mke2fs", "-q", "-F", "-t", "ext4", "-E", "root_owner=0:0", *extra]
    if label:
        cmd += ["-L", label]
    if fs_uuid:
        cmd += ["-U", fs_uuid]
    if tree is not None:
        cmd += ["-d", str(tree)]
    with open(out, "wb") as f:
        f.truncate(size)
    subprocess.run([*cmd, str(out), str(size // 1024) + "k"], check=True, capture_output=True,
                   env={**os.environ, "E2FSPROGS_FAKE_TIME": "1700000000"})
    return out


def xfs_protofile(tree: Path) -> str:
    """An mkfs.xfs protofile (xfsprogs' proto format) that copies `tree`: directories, regular
    files (their bytes read from the tree) and symbolic links, all owned by root. Names and link
    targets are whitespace-separated tokens in that format, so they must hold no blanks."""
    lines = ["/dev/null", "0 0", "d--755 0 0"]

    def walk(directory: Path, depth: int) -> None:
        for child in sorted(directory.iterdir()):
            if any(c.isspace() for c in child.name):
                raise ValueError(f"{child}: a protofile name cannot hold blanks")
            pad = " " * depth
            perms = f"{child.lstat().st_mode & 0o777:03o}"
            if child.is_symlink():
                lines.append(f"{pad}{child.name} l--{perms} 0 0 {os.readlink(child)}")
            elif child.is_dir():
                lines.append(f"{pad}{child.name} d--{perms} 0 0")
                walk(child, depth + 1)
                lines.append(f"{pad}$")
            else:
                lines.append(f"{pad}{child.name} ---{perms} 0 0 {child}")
    walk(tree, 1)
    lines.append("$")
    return "\n".join(lines) + "\n"


def make_xfs(tree: Path | None, out: Path, size: int, *, label: str = "", extra: tuple[str, ...] = ()) -> Path:
    """An XFS filesystem image of `tree`, populated by mkfs.xfs from a protofile (nothing mounted)."""
    cmd = ["mkfs.xfs", "-q", "-f", *extra]
    if label:
        cmd += ["-L", label]
    if tree is not None:
        proto = out.with_suffix(".proto")
        proto.write_text(xfs_protofile(tree))
        cmd += ["-p", str(proto)]
    with open(out, "wb") as f:
        f.truncate(size)
    # mkfs.xfs refuses filesystems under 300 MB unless it believes it runs under its own test suite
    # (these three variables set); small test images keep the disks quick to build and upload
    small_ok = {"TEST_DIR": "/nonexistent", "TEST_DEV": "/nonexistent", "QA_CHECK_FS": "1"}
    subprocess.run([*cmd, str(out)], check=True, capture_output=True, env={**os.environ, **small_ok})
    return out


LVM_TYPE = uuid.UUID("e6d6d379-f507-44c2-a23c-238f2a3df928")


def _lvm_crc(data: bytes) -> int:
    """LVM2's checksum: CRC-32 seeded with 0xf597a6cf, no final inversion."""
    return zlib.crc32(data, 0xF597A6CF ^ 0xFFFFFFFF) ^ 0xFFFFFFFF


def lvm_pv(out: Path, volumes: dict[str, tuple[Path | int, list[tuple[int, int | None]]]], *, vg: str = "vg0",
           extent: int = MiB, edit: Callable[[str], str] | None = None) -> Path:
    """An LVM2 physical volume written byte by byte (LVM's tools need a block device; this needs
    none): label in sector 1, PV header, one metadata area with the volume group's text metadata,
    extents from 1 MiB. `volumes`: LV name -> (a filesystem image or a length in extents, its
    linear segments in order as (first physical extent, extents; None: the rest)); `edit`
    rewrites the metadata text before it is written (and checksummed), for hostile volumes."""
    pe_start, mda_start, mda_size = MiB, 4096, MiB - 4096
    layout: dict[str, list[tuple[int, int]]] = {}
    for name, (content, segs) in volumes.items():
        total = -(-(content.stat().st_size if isinstance(content, Path) else content * extent) // extent)
        layout[name] = []
        for pe, count in segs:
            count = total - sum(n for _p, n in layout[name]) if count is None else count
            layout[name].append((pe, count))
    pe_count = max(pe + n for segs in layout.values() for pe, n in segs)
    size = pe_start + pe_count * extent
    pv_id = uuid.uuid4().hex.upper()
    dashed = "-".join(pv_id[a:b] for a, b in ((0, 6), (6, 10), (10, 14), (14, 18), (18, 22), (22, 26), (26, 32)))
    lvs = []
    for name, segs in layout.items():
        parts, le = [], 0
        for i, (pe, n) in enumerate(segs, 1):
            parts.append(f'segment{i} {{\nstart_extent = {le}\nextent_count = {n}\ntype = "striped"\n'
                         f'stripe_count = 1\nstripes = [\n"pv0", {pe}\n]\n}}\n')
            le += n
        lvs.append(f'{name} {{\nid = "{dashed}"\nstatus = ["READ", "WRITE", "VISIBLE"]\nflags = []\n'
                   f'segment_count = {len(segs)}\n\n' + "".join(parts) + "}\n")
    plain = (f'{vg} {{\nid = "{dashed}"\nseqno = 3\nformat = "lvm2"\nstatus = ["RESIZEABLE", "READ", "WRITE"]\n'
            f'flags = []\nextent_size = {extent // 512}\nmax_lv = 0\nmax_pv = 0\nmetadata_copies = 0\n\n'
            f'physical_volumes {{\n\npv0 {{\nid = "{dashed}"\ndevice = "/dev/vda2"\n\nstatus = ["ALLOCATABLE"]\n'
            f'flags = []\ndev_size = {size // 512}\npe_start = {pe_start // 512}\npe_count = {pe_count}\n}}\n}}\n\n'
            f'logical_volumes {{\n\n' + "\n".join(lvs) + '}\n\n}\n# Generated by tests/guest_images.py\n\n'
            'contents = "Text Format Volume Group"\nversion = 1\n\ndescription = ""\n\n'
            'creation_host = "test"\ncreation_time = 1700000000\n')
    text = (edit(plain) if edit else plain).encode() + b"\0"
    with open(out, "wb") as f:
        f.truncate(size)
        label = bytearray(512)
        label[0:32] = struct.pack("<8sQII8s", b"LABELONE", 1, 0, 32, b"LVM2 001")
        label[32:72] = pv_id.encode() + struct.pack("<Q", size)
        label[72:136] = struct.pack("<QQQQQQQQ", pe_start, 0, 0, 0, mda_start, mda_size, 0, 0)
        label[16:20] = struct.pack("<I", _lvm_crc(bytes(label[20:])))
        f.seek(512)
        f.write(label)
        mda = bytearray(512)
        mda[4:40] = struct.pack("<16sIQQ", b" LVM2 x[5A%r0N*>", 1, mda_start, mda_size)
        mda[40:64] = struct.pack("<QQII", 512, len(text), _lvm_crc(text), 0)
        mda[0:4] = struct.pack("<I", _lvm_crc(bytes(mda[4:])))
        f.seek(mda_start)
        f.write(mda)
        f.seek(mda_start + 512)
        f.write(text)
        for name, (content, _segs) in volumes.items():
            if not isinstance(content, Path):
                continue
            with open(content, "rb") as src:
                for pe, n in layout[name]:
                    f.seek(pe_start + pe * extent)
                    f.write(src.read(n * extent))
    return out


def gpt_disk(out: Path, disk_size: int, parts: list[tuple[uuid.UUID, Path | int, str]]) -> Path:
    """A raw GPT disk: each part (type, filesystem image or a size in bytes, name) at 1 MiB
    alignment, with a protective MBR and both GPT headers."""
    sector = 512
    entries = bytearray(128 * 128)
    at = MiB
    with open(out, "wb") as f:
        f.truncate(disk_size)
        for i, (ptype, content, name) in enumerate(parts):
            size = content if isinstance(content, int) else content.stat().st_size
            size = -(-size // MiB) * MiB
            if not isinstance(content, int):
                f.seek(at)
                with open(content, "rb") as src:
                    shutil.copyfileobj(src, f, 4 * MiB)
            first, last = at // sector, (at + size) // sector - 1
            entries[i * 128:(i + 1) * 128] = (ptype.bytes_le + uuid.uuid4().bytes_le + struct.pack("<QQQ", first, last, 0)
                                              + name.encode("utf-16-le").ljust(72, b"\0"))
            at += size
        total = disk_size // sector
        entries_crc = zlib.crc32(bytes(entries))

        def header(current: int, backup: int, entries_lba: int) -> bytes:
            h = bytearray(struct.pack("<8sIIIIQQQQ16sQIII", b"EFI PART", 0x10000, 92, 0, 0, current, backup, 34,
                                      total - 34, uuid.uuid4().bytes_le, entries_lba, 128, 128, entries_crc))
            h[16:20] = struct.pack("<I", zlib.crc32(bytes(h)))
            return bytes(h)
        mbr = bytearray(512)
        mbr[446:462] = struct.pack("<B3sB3sII", 0, b"\0\x02\0", 0xEE, b"\xff\xff\xff", 1, min(total - 1, 0xFFFFFFFF))
        mbr[510:512] = b"\x55\xaa"
        f.seek(0)
        f.write(mbr)
        f.write(header(1, total - 1, 2))
        f.seek(2 * sector)
        f.write(entries)
        f.seek((total - 33) * sector)
        f.write(entries)
        f.seek((total - 1) * sector)
        f.write(header(total - 1, 1, total - 33))
    return out


def to_qcow2(raw: Path, out: Path) -> Path:
    subprocess.run(["qemu-img", "convert", "-f", "raw", "-O", "qcow2", str(raw), str(out)], check=True,
                   capture_output=True)
    return out


def os_disk(workdir: Path, distro: str, *, disk_size: int = 256 * MiB, uefi: bool = True, **root_options) -> Path:
    """A GPT qcow2 with an ESP (or a BIOS boot partition) and an ext4 root holding a small tree."""
    tree = fake_root(workdir / f"{distro}-tree", distro, **root_options)
    root_fs = make_ext4(tree, workdir / f"{distro}-root.ext4", 96 * MiB, label="root")
    first = (ESP_TYPE, 8 * MiB, "EFI System") if uefi else (BIOS_BOOT_TYPE, MiB, "BIOS boot")
    raw = gpt_disk(workdir / f"{distro}.raw", disk_size, [first, (LINUX_TYPE, root_fs, "root")])
    qcow = to_qcow2(raw, workdir / f"{distro}.qcow2")
    raw.unlink()
    return qcow


# --- a real Debian root by debootstrap ---------------------------------------------------------

DEBIAN_SUITE = "bookworm"
# debootstrap does not resolve virtual packages: python3-cffi-backend provides what cryptography needs.
FULL_PACKAGES = ("linux-image-amd64", "grub-pc-bin", "grub2-common", "cloud-init", "openssh-server",
                 "python3-cffi-backend")


def debian_recipe(full: bool) -> str:
    packages = ",".join(FULL_PACKAGES) if full else ""
    return f"debootstrap --variant=minbase --include={packages} {DEBIAN_SUITE} amd64 v1"


def debian_disk(full: bool, disk_size: int = 2048 * MiB) -> Path:
    """A real Debian root (debootstrap: with kernel, GRUB, cloud-init and sshd, or minimal) in a
    GPT qcow2 of `disk_size`, built once and cached by the recipe's hash."""
    recipe = debian_recipe(full) + f" disk={disk_size}"
    key = hashlib.sha256(recipe.encode()).hexdigest()[:16]
    CACHE.mkdir(parents=True, exist_ok=True)
    out = CACHE / f"debian-{'full' if full else 'minimal'}-{key}.qcow2"
    if out.exists():
        return out
    # The SQLite and PostgreSQL suites run side by side: one builds, the other waits for it.
    with open(CACHE / f"{key}.lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        if not out.exists():
            _build_debian(full, disk_size, out, key)
    return out


def _build_debian(full: bool, disk_size: int, out: Path, key: str) -> None:
    work = CACHE / f"work-{key}"
    shutil.rmtree(work, ignore_errors=True)
    work.mkdir()
    tree = work / "root"
    cmd = ["debootstrap", "--variant=minbase", "--arch=amd64"]
    if full:
        cmd.append("--include=" + ",".join(FULL_PACKAGES))
    subprocess.run([*cmd, DEBIAN_SUITE, str(tree)], check=True, capture_output=True,
                   env={**os.environ, "DEBIAN_FRONTEND": "noninteractive"})
    # debootstrap leaves apt's downloaded packages behind: not part of an image
    for cached in (tree / "var/cache/apt/archives").glob("*.deb"):
        cached.unlink()
    root_uuid = str(uuid.uuid4())
    (tree / "etc/fstab").write_text(f"UUID={root_uuid} / ext4 errors=remount-ro 0 1\n")
    (tree / "etc/hostname").write_text("debian-insight\n")
    if full:
        (tree / "boot/grub").mkdir(parents=True, exist_ok=True)
        (tree / "boot/grub/grub.cfg").write_text("menuentry 'Debian' { linux /vmlinuz root=UUID="
                                                 f"{root_uuid} ro }}\n")
    root_fs = make_ext4(tree, work / "root.ext4", disk_size - 4 * MiB, label="root", fs_uuid=root_uuid)
    raw = gpt_disk(work / "disk.raw", disk_size, [(BIOS_BOOT_TYPE, MiB, "BIOS boot"), (LINUX_TYPE, root_fs, "root")])
    partial = out.with_suffix(".partial")
    to_qcow2(raw, partial)
    partial.rename(out)
    shutil.rmtree(work, ignore_errors=True)
