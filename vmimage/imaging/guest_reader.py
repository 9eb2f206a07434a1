"""Reads what is inside a disk image without booting or mounting it: the child-process half
of image insight (core/insight.py makes the report of what this finds).

Run as `python -I -S guest_reader.py FILE FORMAT`, or `... --ranges FD SIZE FORMAT` to read an
image that is in no local file through requests on an inherited socket (RangedSource below):
imaging/insight_reader.py starts it under
prlimit CPU/address-space caps and a wall-clock deadline. It prints one JSON object of raw
facts on stdout, or {"error": "..."}. Standard library only, so it imports nothing of the
service. Everything is parsed here from the bytes: qcow2 (its L1/L2 tables, compressed clusters)
or raw, MBR/GPT partition tables, LVM2 linear logical volumes, ext2/3/4 (extents and block
maps, linear and hashed directories, fast and slow symlinks), XFS v4/v5 (short-form, block, leaf
and node directories, extent lists and btrees, local and remote symlinks), and the signatures of
Btrfs, VFAT, NTFS and swap. The host kernel never sees the filesystem (no mount, no loop device), no guest code runs,
and a guest path is resolved inside the guest's filesystem only: `..` at the root stays at
the root, an absolute link starts again at the guest's root, at most 40 links are followed.
Every read is bounded (file, directory and total byte caps), so loops, huge or sparse files
and lying superblocks end as an error or a true reading, never a hang.
"""

from __future__ import annotations

import json
import os
import posixpath
import re
import struct
import sys
import uuid
import zlib
from typing import Any, Protocol

MAX_FILE_BYTES = 1 << 20           # a config file, os-release, modules.builtin: read at most this
MAX_DIR_BYTES = 4 << 20            # a directory's blocks read at most
MAX_DIR_ENTRIES = 20000
MAX_TOTAL_READ = 256 << 20         # the whole reading stops past this
MAX_SYMLINK_HOPS = 40
MAX_EXTENT_DEPTH = 5


class ReadError(Exception):
    """The image cannot be read as it claims to be."""


class GuestPathError(Exception):
    """A guest path that does not resolve (missing, a loop, not a directory)."""


# --- the disk: raw or qcow2 -----------------------------------------------------------------

class FileSource:
    """The image in a local file: read directly."""

    def __init__(self, path: str) -> None:
        self.f = open(path, "rb")
        self.f.seek(0, 2)
        self.size = self.f.tell()

    def pread(self, offset: int, length: int) -> bytes:
        self.f.seek(offset)
        return self.f.read(length)


class RangedSource:
    """The image in a store without a local file (S3, a web location): each read is one request
    on the inherited socket, answered by the parent (imaging/insight_reader.py) from the store.
    Request: offset and length (">QI"); answer: a length (">I", at most the one asked, less
    only at the data's end) and that many bytes. The parent ends the exchange on any error."""

    def __init__(self, fd: int, size: int) -> None:
        self.fd, self.size = fd, size

    def pread(self, offset: int, length: int) -> bytes:
        if offset >= self.size or length <= 0:
            return b""
        out = []
        while length > 0:      # one request at most 16 MiB: the parent's answers stay small
            part = min(length, 16 << 20)
            data = self._ask(offset, part)
            out.append(data)
            if len(data) < part:
                break
            offset, length = offset + part, length - part
        return b"".join(out)

    def _ask(self, offset: int, length: int) -> bytes:
        _write_all(self.fd, struct.pack(">QI", offset, length))
        (got,) = struct.unpack(">I", _read_exactly(self.fd, 4))
        if got > length:
            raise ReadError("the image's data source answered more than was asked")
        return _read_exactly(self.fd, got)


def _write_all(fd: int, data: bytes) -> None:
    view = memoryview(data)
    while view:
        view = view[os.write(fd, view):]


def _read_exactly(fd: int, length: int) -> bytes:
    parts, left = [], length
    while left:
        chunk = os.read(fd, min(left, 1 << 20))
        if not chunk:
            raise ReadError("the image's data stopped coming")
        parts.append(chunk)
        left -= len(chunk)
    return b"".join(parts)


class Disk:
    def __init__(self, source: FileSource | RangedSource | str) -> None:
        self.source = FileSource(source) if isinstance(source, str) else source   # str: a local file
        self.file_size = self.source.size
        self.bytes_read = 0
        self.size = self.file_size

    def _pread(self, offset: int, length: int) -> bytes:
        self.bytes_read += length
        if self.bytes_read > MAX_TOTAL_READ:
            raise ReadError(f"more than {MAX_TOTAL_READ} bytes read: the image's structures lead nowhere")
        try:
            return self.source.pread(offset, length)
        except OSError as exc:
            raise ReadError(f"the image's data at offset {offset} cannot be read ({exc.strerror})") from exc

    def read(self, offset: int, length: int) -> bytes:
        """Guest bytes [offset, offset+length); zeros past the end of the disk's data."""
        if offset < 0 or length < 0 or offset + length > self.size:
            raise ReadError(f"a read at {offset}+{length} goes past the disk's end ({self.size})")
        data = self._pread(offset, length)
        return data + bytes(length - len(data))


class Qcow2Disk(Disk):
    def __init__(self, source: FileSource | RangedSource) -> None:
        super().__init__(source)
        head = self._pread(0, 104)
        if head[:4] != b"QFI\xfb":
            raise ReadError("not a qcow2 file")
        (version, backing_offset, _bsize, self.cluster_bits, size, crypt, l1_size,
         l1_offset) = struct.unpack(">IQIIQIIQ", head[4:48])
        if version not in (2, 3):
            raise ReadError(f"qcow2 version {version} is not read")
        if backing_offset:
            raise ReadError("a qcow2 with a backing file is not read")
        if crypt:
            raise ReadError("an encrypted qcow2 is not read")
        if not 9 <= self.cluster_bits <= 21:
            raise ReadError(f"qcow2 cluster bits {self.cluster_bits} out of range")
        if version == 3:
            incompatible = struct.unpack(">Q", head[72:80])[0]
            if incompatible & ~0x3:     # dirty and corrupt bits are fine to read; data files, extended L2 not
                raise ReadError(f"qcow2 incompatible features {incompatible:#x} are not read")
            if len(head) >= 105 and head[104:105] not in (b"", b"\x00"):
                raise ReadError("qcow2 compression other than zlib is not read")
        self.size = size
        self.cluster_size = 1 << self.cluster_bits
        self.l2_entries = self.cluster_size // 8
        if l1_size > (1 << 25):
            raise ReadError("qcow2 L1 table is implausibly large")
        raw = self._pread(l1_offset, l1_size * 8)
        if len(raw) != l1_size * 8:
            raise ReadError("qcow2 L1 table lies past the file's end")
        self.l1 = struct.unpack(f">{l1_size}Q", raw)
        self.l2_cache: dict[int, tuple[int, ...]] = {}
        self.cluster_cache: dict[int, bytes | None] = {}    # small reads of one cluster read it once

    def _l2(self, offset: int) -> tuple[int, ...]:
        table = self.l2_cache.get(offset)
        if table is None:
            raw = self._pread(offset, self.cluster_size)
            if len(raw) != self.cluster_size:
                raise ReadError("qcow2 L2 table lies past the file's end")
            table = struct.unpack(f">{self.l2_entries}Q", raw)
            if len(self.l2_cache) > 256:
                self.l2_cache.clear()
            self.l2_cache[offset] = table
        return table

    def _cluster(self, index: int) -> bytes | None:
        """A guest cluster's bytes; None: unallocated or zero."""
        if index in self.cluster_cache:
            return self.cluster_cache[index]
        data = self._read_cluster(index)
        if len(self.cluster_cache) >= 128:
            self.cluster_cache.pop(next(iter(self.cluster_cache)))
        self.cluster_cache[index] = data
        return data

    def _read_cluster(self, index: int) -> bytes | None:
        l1_index, l2_index = divmod(index, self.l2_entries)
        if l1_index >= len(self.l1):
            return None
        l2_offset = self.l1[l1_index] & 0x00FFFFFFFFFFFE00
        if not l2_offset:
            return None
        entry = self._l2(l2_offset)[l2_index]
        if entry & (1 << 62):         # compressed
            bits = 62 - (self.cluster_bits - 8)
            host = entry & ((1 << bits) - 1)
            sectors = ((entry >> bits) & ((1 << (self.cluster_bits - 8)) - 1)) + 1
            raw = self._pread(host, sectors * 512 - (host & 511))
            try:
                return zlib.decompressobj(-12).decompress(raw, self.cluster_size).ljust(self.cluster_size, b"\0")
            except zlib.error as exc:
                raise ReadError(f"a compressed qcow2 cluster does not inflate: {exc}") from exc
        if entry & 1:                 # reads as zeros (v3)
            return None
        host = entry & 0x00FFFFFFFFFFFE00
        if not host:
            return None
        data = self._pread(host, self.cluster_size)
        if len(data) != self.cluster_size:
            raise ReadError("a qcow2 cluster lies past the file's end")
        return data

    def read(self, offset: int, length: int) -> bytes:
        if offset < 0 or length < 0 or offset + length > self.size:
            raise ReadError(f"a read at {offset}+{length} goes past the disk's end ({self.size})")
        out = bytearray()
        while length > 0:
            index, within = divmod(offset, self.cluster_size)
            take = min(length, self.cluster_size - within)
            data = self._cluster(index)
            out += data[within:within + take] if data is not None else bytes(take)
            offset, length = offset + take, length - take
        return bytes(out)


class Slice:
    """A partition: reads relative to its start, never past its end."""

    def __init__(self, disk: Disk, start: int, size: int) -> None:
        self.disk, self.start, self.size = disk, start, size

    def read(self, offset: int, length: int) -> bytes:
        if offset < 0 or offset + length > self.size:
            raise ReadError(f"a read at {offset}+{length} goes past the end of its partition ({self.size} bytes)")
        return self.disk.read(self.start + offset, length)


class BlockDevice(Protocol):
    """What a filesystem reader reads from: a disk, a partition or a logical volume."""

    size: int

    def read(self, offset: int, length: int) -> bytes: ...


# --- partition tables -----------------------------------------------------------------------

ESP_GUID = "c12a7328-f81f-11d2-ba4b-00a0c93ec93b"
BIOS_BOOT_GUID = "21686148-6449-6e6f-744e-656564454649"
LVM_GUID = "e6d6d379-f507-44c2-a23c-238f2a3df928"


def partitions(disk: Disk) -> tuple[str, list[dict[str, Any]], bool]:
    """(table kind, partitions, whether the MBR has boot code)."""
    mbr = disk.read(0, 512)
    if mbr[510:512] != b"\x55\xaa":
        return "none", [], False
    boot_code = any(mbr[:440])
    entries = [struct.unpack("<B3sB3sII", mbr[446 + 16 * i:462 + 16 * i]) for i in range(4)]
    if any(e[2] == 0xEE for e in entries):
        return "gpt", _gpt(disk), boot_code
    found = []
    for number, (status, _chs, ptype, _chs2, lba, sectors) in enumerate(entries, 1):
        if ptype == 0 or sectors == 0:
            continue
        found.append({"number": number, "start": lba * 512, "size": sectors * 512, "type": f"{ptype:#04x}",
                      "bootable": bool(status & 0x80), "esp": ptype == 0xEF, "bios_boot": False,
                      "lvm": ptype == 0x8E, "extended": ptype in (0x05, 0x0F, 0x85)})
    return "mbr", found, boot_code


def _gpt(disk: Disk) -> list[dict[str, Any]]:
    head = disk.read(512, 92)
    if head[:8] != b"EFI PART":
        raise ReadError("protective MBR but no GPT header")
    entries_lba, count, entry_size = struct.unpack("<QII", head[72:88])
    if not 128 <= entry_size <= 4096 or count > 1024:
        raise ReadError("GPT header with implausible entries")
    raw = disk.read(entries_lba * 512, count * entry_size)
    found = []
    for i in range(count):
        e = raw[i * entry_size:(i + 1) * entry_size]
        if not any(e[:16]):
            continue
        type_guid = str(uuid.UUID(bytes_le=e[:16]))
        first, last = struct.unpack("<QQ", e[32:48])
        if last < first:
            raise ReadError(f"GPT partition {i + 1} ends before it starts")
        name = e[56:128].decode("utf-16-le", "replace").rstrip("\0")
        found.append({"number": i + 1, "start": first * 512, "size": (last - first + 1) * 512, "type": type_guid,
                      "name": name, "partuuid": str(uuid.UUID(bytes_le=e[16:32])), "esp": type_guid == ESP_GUID,
                      "bios_boot": type_guid == BIOS_BOOT_GUID, "lvm": type_guid == LVM_GUID, "extended": False})
    return found


# --- filesystem signatures ------------------------------------------------------------------

def probe(dev: BlockDevice) -> dict[str, Any]:
    """What a partition holds, by its signature."""
    if dev.size < 4096:
        return {"type": "unknown"}
    first = dev.read(0, 4096)
    if dev.size >= 2048:
        sb = dev.read(1024, 1024)
        if sb[56:58] == b"\x53\xef":
            features = struct.unpack("<III", sb[92:104])
            kind = "ext4" if features[1] & 0x2C0 else ("ext3" if features[0] & 0x4 else "ext2")
            return {"type": kind, "uuid": str(uuid.UUID(bytes=sb[104:120])),
                    "label": sb[120:136].split(b"\0")[0].decode("utf-8", "replace")}
    if first[:4] == b"XFSB":
        return {"type": "xfs", "uuid": str(uuid.UUID(bytes=first[32:48])),
                "label": first[108:120].split(b"\0")[0].decode("utf-8", "replace")}
    if dev.size > 0x10048 and dev.read(0x10040, 8) == b"_BHRfS_M":
        sb = dev.read(0x10000, 0x400)
        return {"type": "btrfs", "uuid": str(uuid.UUID(bytes=sb[32:48])),
                "label": sb[0x12B:0x12B + 256].split(b"\0")[0].decode("utf-8", "replace")}
    if first[3:11] == b"NTFS    ":
        return {"type": "ntfs", "uuid": f"{struct.unpack('<Q', first[72:80])[0]:016X}"}
    if first[510:512] == b"\x55\xaa" and (first[82:87] == b"FAT32" or first[54:57] == b"FAT"):
        at = 67 if first[82:87] == b"FAT32" else 39
        serial = struct.unpack("<I", first[at:at + 4])[0]
        label = first[at + 4:at + 15].decode("ascii", "replace").strip()
        return {"type": "vfat", "uuid": f"{serial >> 16:04X}-{serial & 0xFFFF:04X}",
                "label": "" if label == "NO NAME" else label}
    if first[4086:4096] in (b"SWAPSPACE2", b"SWAP-SPACE"):
        return {"type": "swap", "uuid": str(uuid.UUID(bytes=first[1036:1052])),
                "label": first[1052:1068].split(b"\0")[0].decode("utf-8", "replace")}
    if first[512:520] == b"LABELONE":
        return {"type": "LVM2_member"}
    return {"type": "unknown"}


# --- ext2/3/4 -------------------------------------------------------------------------------

S_IFMT, S_IFDIR, S_IFREG, S_IFLNK = 0o170000, 0o040000, 0o100000, 0o120000


class GuestFs:
    """What every filesystem reader shares: path lookup with in-guest link resolution, file reads.

    A subclass gives root_number, inode(number) -> {"mode", "size", ...}, _entries(inode) -> {name:
    number}, read_inode(inode, cap) -> bytes and read_link(inode) -> str, plus free_blocks,
    blocks_count and block_size."""

    root_number = 2
    free_blocks = blocks_count = block_size = 0

    def inode(self, number: int) -> dict[str, Any]:
        raise NotImplementedError

    def _entries(self, ino: dict[str, Any]) -> dict[str, int]:
        raise NotImplementedError

    def read_inode(self, ino: dict[str, Any], cap: int) -> bytes:
        raise NotImplementedError

    def read_link(self, ino: dict[str, Any]) -> str:
        raise NotImplementedError

    def lookup(self, path: str, follow: bool = True) -> tuple[int, dict[str, Any]]:
        """The inode at a guest path, links resolved inside this filesystem only."""
        hops = 0
        parts = [p for p in path.split("/") if p]
        stack: list[tuple[int, dict[str, Any]]] = [(self.root_number, self.inode(self.root_number))]
        while parts:
            name = parts.pop(0)
            if name == ".":
                continue
            if name == "..":
                if len(stack) > 1:
                    stack.pop()
                continue
            _number, current = stack[-1]
            if current["mode"] & S_IFMT != S_IFDIR:
                raise GuestPathError(f"{path}: not a directory on the way")
            child_number = self._entries(current).get(name)
            if child_number is None:
                raise GuestPathError(f"{path}: not found")
            child = self.inode(child_number)
            if child["mode"] & S_IFMT == S_IFLNK and (parts or follow):
                hops += 1
                if hops > MAX_SYMLINK_HOPS:
                    raise GuestPathError(f"{path}: too many levels of symbolic links")
                target = self.read_link(child)
                if target.startswith("/"):
                    stack = stack[:1]
                parts = [p for p in target.split("/") if p] + parts
                continue
            stack.append((child_number, child))
        return stack[-1]

    def read_file(self, path: str, cap: int = MAX_FILE_BYTES) -> bytes | None:
        """A regular file's first `cap` bytes; None when it is not there."""
        try:
            _n, ino = self.lookup(path)
        except GuestPathError:
            return None
        if ino["mode"] & S_IFMT != S_IFREG:
            return None
        return self.read_inode(ino, cap)

    def exists(self, path: str) -> bool:
        try:
            self.lookup(path)
        except GuestPathError:
            return False
        return True

    def listdir(self, path: str) -> list[str]:
        try:
            _n, ino = self.lookup(path)
        except GuestPathError:
            return []
        if ino["mode"] & S_IFMT != S_IFDIR:
            return []
        return sorted(n for n in self._entries(ino) if n not in (".", ".."))


class ExtFs(GuestFs):
    def __init__(self, dev: BlockDevice) -> None:
        self.dev = dev
        sb = dev.read(1024, 1024)
        if sb[56:58] != b"\x53\xef":
            raise ReadError("no ext superblock")
        (self.inodes_count, blocks_lo, _r, free_lo, _fi, self.first_data_block, log_bs, _lc,
         self.blocks_per_group, _cpg, self.inodes_per_group) = struct.unpack("<11I", sb[0:44])
        rev = struct.unpack("<I", sb[76:80])[0]
        self.inode_size = struct.unpack("<H", sb[88:90])[0] if rev >= 1 else 128
        self.compat, self.incompat, self.ro_compat = struct.unpack("<III", sb[92:104])
        is64 = bool(self.incompat & 0x80)
        self.desc_size = (struct.unpack("<H", sb[254:256])[0] or 32) if is64 else 32
        blocks_hi = struct.unpack("<I", sb[0x150:0x154])[0] if is64 else 0
        free_hi = struct.unpack("<I", sb[0x158:0x15C])[0] if is64 else 0
        if log_bs > 6:
            raise ReadError(f"ext superblock: block size 2^{10 + log_bs} is not possible")
        self.block_size = 1024 << log_bs
        self.blocks_count = blocks_lo | (blocks_hi << 32)
        self.free_blocks = free_lo | (free_hi << 32)
        if not self.blocks_per_group or not self.inodes_per_group or not self.inodes_count:
            raise ReadError("ext superblock: zero blocks or inodes per group")
        if self.inode_size < 128 or self.inode_size > self.block_size or self.inode_size & (self.inode_size - 1):
            raise ReadError(f"ext superblock: inode size {self.inode_size} is not possible")
        if not 32 <= self.desc_size <= 1024:
            raise ReadError(f"ext superblock: group descriptor size {self.desc_size} is not possible")
        if self.blocks_count * self.block_size > dev.size:
            raise ReadError(f"the filesystem claims {self.blocks_count * self.block_size} bytes but its "
                            f"partition holds {dev.size}")
        if self.free_blocks > self.blocks_count:
            raise ReadError("ext superblock: more free blocks than blocks")
        self.groups = -(-(self.blocks_count - self.first_data_block) // self.blocks_per_group)
        if self.groups * self.inodes_per_group < self.inodes_count:
            raise ReadError("ext superblock: more inodes than its groups hold")
        self.gdt_block = self.first_data_block + 1
        self._tables: dict[int, int] = {}

    def _block(self, number: int, count: int = 1) -> bytes:
        if number <= 0 and count:
            raise ReadError("a block pointer to block 0")
        if number + count > self.blocks_count:
            raise ReadError(f"a block pointer past the filesystem's end ({number})")
        return self.dev.read(number * self.block_size, count * self.block_size)

    def _inode_table(self, group: int) -> int:
        if group not in self._tables:
            raw = self.dev.read(self.gdt_block * self.block_size + group * self.desc_size, self.desc_size)
            lo = struct.unpack("<I", raw[8:12])[0]
            hi = struct.unpack("<I", raw[0x28:0x2C])[0] if self.desc_size >= 64 else 0
            self._tables[group] = lo | (hi << 32)
        return self._tables[group]

    def inode(self, number: int) -> dict[str, Any]:
        if not 1 <= number <= self.inodes_count:
            raise ReadError(f"inode number {number} out of range")
        group, index = divmod(number - 1, self.inodes_per_group)
        table = self._inode_table(group)
        if table <= 0 or table >= self.blocks_count:
            raise ReadError(f"group {group}'s inode table lies outside the filesystem")
        raw = self.dev.read(table * self.block_size + index * self.inode_size, 128)
        mode = struct.unpack("<H", raw[0:2])[0]
        size = struct.unpack("<I", raw[4:8])[0] | (struct.unpack("<I", raw[108:112])[0] << 32)
        flags = struct.unpack("<I", raw[32:36])[0]
        return {"mode": mode, "size": size, "flags": flags, "block": raw[40:100]}

    # The blocks of a file: (logical block, physical block or 0 for a hole, count).
    def _extents(self, node: bytes, depth_left: int, out: list[tuple[int, int, int]],
                 seen: set[int] | None = None) -> None:
        # seen: the tree's blocks so far; one reached twice is a loop (cached reads of the same
        # block would otherwise never count towards the total-read cap).
        seen = set() if seen is None else seen
        magic, entries, _max, depth = struct.unpack("<HHHH", node[:8])
        if magic != 0xF30A or depth > MAX_EXTENT_DEPTH or depth_left < 0:
            raise ReadError("a broken extent tree")
        for i in range(min(entries, (len(node) - 12) // 12)):
            e = node[12 + 12 * i:24 + 12 * i]
            if depth == 0:
                logical, length, hi, lo = struct.unpack("<IHHI", e)
                uninit = length > 32768
                length = length - 32768 if uninit else length
                out.append((logical, 0 if uninit else lo | (hi << 32), length))
            else:
                _logical, lo, hi = struct.unpack("<IIH", e[:10])
                child = lo | (hi << 32)
                if child in seen:
                    raise ReadError("an extent tree that loops")
                seen.add(child)
                self._extents(self._block(child), depth_left - 1, out, seen)
            if len(out) > 100000:
                raise ReadError("an extent tree of implausible size")

    def _mapped(self, ino: dict[str, Any], blocks_wanted: int) -> list[tuple[int, int, int]]:
        if ino["flags"] & 0x80000:
            out: list[tuple[int, int, int]] = []
            self._extents(ino["block"], MAX_EXTENT_DEPTH, out)
            return out
        pointers = struct.unpack("<15I", ino["block"])
        out = [(i, p, 1) for i, p in enumerate(pointers[:12])]
        per = self.block_size // 4
        logical = 12
        for level, top in ((1, pointers[12]), (2, pointers[13]), (3, pointers[14])):
            if logical >= blocks_wanted:
                break
            logical = self._indirect(top, level, logical, blocks_wanted, out)
            if not top:
                logical += per ** level
        return out

    def _indirect(self, block: int, level: int, logical: int, wanted: int, out: list[tuple[int, int, int]]) -> int:
        per = self.block_size // 4
        if not block:
            return logical
        pointers = struct.unpack(f"<{per}I", self._block(block))
        for p in pointers:
            if logical >= wanted:
                return logical
            if level == 1:
                out.append((logical, p, 1))
                logical += 1
            elif p:
                logical = self._indirect(p, level - 1, logical, wanted, out)
            else:
                logical += per ** (level - 1)
        return logical

    def read_inode(self, ino: dict[str, Any], cap: int) -> bytes:
        size = min(ino["size"], cap)
        if ino["flags"] & 0x10000000:       # inline data: the first 60 bytes live in the inode
            return ino["block"][:size]
        blocks = -(-size // self.block_size)
        data = bytearray(blocks * self.block_size)
        for logical, physical, count in self._mapped(ino, blocks):
            if logical >= blocks or not physical:
                continue
            count = min(count, blocks - logical)
            data[logical * self.block_size:(logical + count) * self.block_size] = self._block(physical, count)
        return bytes(data[:size])

    def _entries(self, ino: dict[str, Any]) -> dict[str, int]:
        if ino["size"] > MAX_DIR_BYTES:
            raise GuestPathError("a directory larger than the reader reads")
        raw = self.read_inode(ino, MAX_DIR_BYTES)
        names: dict[str, int] = {}
        for start in range(0, len(raw), self.block_size):
            block, at = raw[start:start + self.block_size], 0
            while at + 8 <= len(block):
                number, rec_len, name_len = struct.unpack("<IHB", block[at:at + 7])
                if rec_len < 8 or at + rec_len > len(block):
                    break
                if number and name_len:
                    names[block[at + 8:at + 8 + name_len].decode("utf-8", "surrogateescape")] = number
                at += rec_len
                if len(names) > MAX_DIR_ENTRIES:
                    raise GuestPathError("a directory with more entries than the reader reads")
        return names

    def read_link(self, ino: dict[str, Any]) -> str:
        if ino["size"] > 4096:
            raise GuestPathError("a symbolic link longer than a path")
        if ino["size"] < 60 and not ino["flags"] & 0x80000 and not ino["flags"] & 0x10000000:
            raw = ino["block"][:ino["size"]]
        else:
            raw = self.read_inode(ino, 4096)
        return raw.decode("utf-8", "surrogateescape")

# --- XFS ------------------------------------------------------------------------------------

# incompatible features read: ftype, sparse inodes, meta uuid, bigtime, needsrepair, nrext64
XFS_INCOMPAT_KNOWN = 0x1 | 0x2 | 0x4 | 0x8 | 0x10 | 0x20
XFS_DIR_LEAF_OFFSET = 1 << 35        # directory data blocks live below this byte offset; leaf/free index above
XFS_MAX_EXTENTS = 100000
XFS_MAX_BTREE_DEPTH = 5


def _log2(value: int) -> int:
    return value.bit_length() - 1


class XfsFs(GuestFs):
    """XFS v4 and v5 (CRC), read-only: every block and inode pointer is checked against the
    filesystem's geometry before it is read; a lying structure ends as ReadError."""

    def __init__(self, dev: BlockDevice) -> None:
        self.dev = dev
        sb = dev.read(0, 512)
        if sb[:4] != b"XFSB":
            raise ReadError("no XFS superblock")
        (self.block_size, self.blocks_count) = struct.unpack(">IQ", sb[4:16])
        self.root_number = struct.unpack(">Q", sb[56:64])[0]
        self.ag_blocks, self.ag_count = struct.unpack(">II", sb[84:92])
        version, sector_size, self.inode_size, inodes_per_block = struct.unpack(">HHHH", sb[100:108])
        block_log, _sect_log, inode_log, inopb_log, self.ag_block_log = sb[120:125]
        self.free_blocks = struct.unpack(">Q", sb[144:152])[0]
        dir_block_log = sb[192]
        features2 = struct.unpack(">I", sb[200:204])[0]
        incompat = struct.unpack(">I", sb[216:220])[0]
        self.v5 = version & 0xF == 5
        if version & 0xF not in (4, 5):
            raise ReadError(f"XFS superblock: version {version & 0xF} is not read")
        if self.v5 and incompat & ~XFS_INCOMPAT_KNOWN:
            raise ReadError(f"XFS incompatible features {incompat & ~XFS_INCOMPAT_KNOWN:#x} are not read")
        if not 512 <= self.block_size <= 65536 or 1 << block_log != self.block_size:
            raise ReadError(f"XFS superblock: block size {self.block_size} is not possible")
        if not 512 <= sector_size <= self.block_size or sector_size & (sector_size - 1):
            raise ReadError(f"XFS superblock: sector size {sector_size} is not possible")
        if not 256 <= self.inode_size <= 2048 or 1 << inode_log != self.inode_size \
                or self.inode_size > self.block_size:
            raise ReadError(f"XFS superblock: inode size {self.inode_size} is not possible")
        if inodes_per_block != self.block_size // self.inode_size or 1 << inopb_log != inodes_per_block:
            raise ReadError("XFS superblock: inodes per block is not possible")
        if not self.ag_blocks or not self.ag_count or self.ag_block_log != (self.ag_blocks - 1).bit_length():
            raise ReadError("XFS superblock: allocation group geometry is not possible")
        if not (self.ag_count - 1) * self.ag_blocks < self.blocks_count <= self.ag_count * self.ag_blocks:
            raise ReadError("XFS superblock: allocation groups and block count do not agree")
        if self.blocks_count * self.block_size > dev.size:
            raise ReadError(f"the filesystem claims {self.blocks_count * self.block_size} bytes but its "
                            f"partition holds {dev.size}")
        if self.free_blocks > self.blocks_count:
            raise ReadError("XFS superblock: more free blocks than blocks")
        self.dir_block_size = self.block_size << dir_block_log
        if self.dir_block_size > 65536:
            raise ReadError(f"XFS superblock: directory block size {self.dir_block_size} is not possible")
        self.inopb_log = inopb_log
        self.has_ftype = self.v5 or bool(features2 & 0x200)
        self.core_size = 176 if self.v5 else 100
        self.inode(self.root_number)

    # Block addresses: a filesystem block number is (AG << agblklog) | block-in-AG.
    def _fsb_to_byte(self, fsb: int, count: int = 1) -> int:
        ag, block = fsb >> self.ag_block_log, fsb & ((1 << self.ag_block_log) - 1)
        linear = ag * self.ag_blocks + block
        if ag >= self.ag_count or block + count > self.ag_blocks or linear + count > self.blocks_count or count < 0:
            raise ReadError(f"an XFS block pointer past the filesystem's end ({fsb}+{count})")
        return linear * self.block_size

    def _blocks(self, fsb: int, count: int = 1) -> bytes:
        return self.dev.read(self._fsb_to_byte(fsb, count), count * self.block_size)

    def inode(self, number: int) -> dict[str, Any]:
        agino_bits = self.inopb_log + self.ag_block_log
        ag, agino = number >> agino_bits, number & ((1 << agino_bits) - 1)
        block, index = agino >> self.inopb_log, agino & ((1 << self.inopb_log) - 1)
        if number <= 0 or ag >= self.ag_count or block >= self.ag_blocks \
                or ag * self.ag_blocks + block >= self.blocks_count:
            raise ReadError(f"XFS inode number {number} out of range")
        at = self._fsb_to_byte((ag << self.ag_block_log) | block) + index * self.inode_size
        raw = self.dev.read(at, self.inode_size)
        magic, mode, version, fmt = struct.unpack(">2sHBB", raw[:6])
        if magic != b"IN" or version not in (1, 2, 3) or (version == 3) != self.v5:
            raise ReadError(f"XFS inode {number} is not an inode")
        if version == 3 and struct.unpack(">Q", raw[152:160])[0] != number:
            raise ReadError(f"XFS inode {number} says it is another inode")
        size = struct.unpack(">Q", raw[56:64])[0]
        fork_offset = raw[82]
        flags2 = struct.unpack(">Q", raw[120:128])[0] if version == 3 else 0
        extents = struct.unpack(">Q", raw[24:32])[0] if flags2 & 0x10 else struct.unpack(">I", raw[76:80])[0]
        fork_end = self.core_size + fork_offset * 8 if fork_offset else self.inode_size
        if fork_end > self.inode_size or size >= 1 << 63:
            raise ReadError(f"XFS inode {number}: its fork or size is not possible")
        return {"number": number, "mode": mode, "size": size, "format": fmt, "extents": extents,
                "fork": raw[self.core_size:fork_end]}

    # The blocks of a file: (logical block, filesystem block, count), unwritten extents left out.
    def _extent_records(self, raw: bytes, count: int, out: list[tuple[int, int, int]]) -> None:
        if count * 16 > len(raw):
            raise ReadError("an XFS extent list longer than its space")
        for i in range(count):
            hi, lo = struct.unpack(">QQ", raw[16 * i:16 * i + 16])
            logical = (hi >> 9) & ((1 << 54) - 1)
            start = ((hi & 0x1FF) << 43) | (lo >> 21)
            length = lo & ((1 << 21) - 1)
            if not hi >> 63 and length:
                self._fsb_to_byte(start, length)
                out.append((logical, start, length))
        if len(out) > XFS_MAX_EXTENTS:
            raise ReadError("an XFS file with an implausible number of extents")

    def _btree(self, fsb: int, level_expected: int, depth_left: int, out: list[tuple[int, int, int]],
               seen: set[int]) -> None:
        if depth_left < 0:
            raise ReadError("an XFS extent tree deeper than possible")
        if fsb in seen:      # a real tree never reaches a block twice; a lying one could loop through the cache
            raise ReadError(f"an XFS extent tree that reaches block {fsb} twice")
        seen.add(fsb)
        block = self._blocks(fsb)
        header = 72 if self.v5 else 24
        magic, level, records = struct.unpack(">4sHH", block[:8])
        if magic != (b"BMA3" if self.v5 else b"BMAP") or level != level_expected:
            raise ReadError(f"a broken XFS extent tree block at {fsb}")
        if level == 0:
            self._extent_records(block[header:], records, out)
            return
        most = (self.block_size - header) // 16
        if records > most:
            raise ReadError(f"an XFS extent tree block with too many records at {fsb}")
        pointers = struct.unpack(f">{records}Q", block[header + most * 8:header + most * 8 + records * 8])
        for pointer in pointers:
            self._btree(pointer, level - 1, depth_left - 1, out, seen)

    def _mapped(self, ino: dict[str, Any]) -> list[tuple[int, int, int]]:
        out: list[tuple[int, int, int]] = []
        fork = ino["fork"]
        if ino["format"] == 2:
            self._extent_records(fork, ino["extents"], out)
        elif ino["format"] == 3:
            level, records = struct.unpack(">HH", fork[:4])
            most = (len(fork) - 4) // 16
            if not 1 <= level <= XFS_MAX_BTREE_DEPTH or records > most:
                raise ReadError(f"XFS inode {ino['number']}: a broken extent tree root")
            seen: set[int] = set()
            for pointer in struct.unpack(f">{records}Q", fork[4 + most * 8:4 + most * 8 + records * 8]):
                self._btree(pointer, level - 1, XFS_MAX_BTREE_DEPTH, out, seen)
        else:
            raise ReadError(f"XFS inode {ino['number']}: data fork format {ino['format']} holds no blocks")
        return out

    def read_inode(self, ino: dict[str, Any], cap: int) -> bytes:
        size = min(ino["size"], cap)
        if ino["format"] == 1:               # local: the bytes live in the inode
            return ino["fork"][:size]
        blocks = -(-size // self.block_size)
        data = bytearray(blocks * self.block_size)
        for logical, physical, count in self._mapped(ino):
            if logical >= blocks:
                continue
            count = min(count, blocks - logical)
            data[logical * self.block_size:(logical + count) * self.block_size] = self._blocks(physical, count)
        return bytes(data[:size])

    def _entries(self, ino: dict[str, Any]) -> dict[str, int]:
        if ino["format"] == 1:
            return self._shortform(ino)
        names: dict[str, int] = {}
        leaf_block = XFS_DIR_LEAF_OFFSET // self.block_size
        per_dir_block = self.dir_block_size // self.block_size
        read = 0
        for logical, physical, count in sorted(self._mapped(ino)):
            if logical >= leaf_block:
                continue
            count = min(count, leaf_block - logical)
            read += count * self.block_size
            if read > MAX_DIR_BYTES:
                raise GuestPathError("a directory larger than the reader reads")
            # a directory block may span extents only when blocks are smaller than it; read whole ones
            if logical % per_dir_block or count % per_dir_block:
                raise ReadError(f"XFS directory {ino['number']}: an extent splits a directory block")
            for first in range(0, count, per_dir_block):
                self._data_block(self._blocks(physical + first, per_dir_block), names)
        return names

    def _data_block(self, block: bytes, names: dict[str, int]) -> None:
        magic = block[:4]
        if magic in (b"XD2B", b"XD2D"):
            at = 16
        elif magic in (b"XDB3", b"XDD3"):
            at = 64
        else:
            raise ReadError(f"an XFS directory block with magic {magic!r}")
        end = len(block)
        if magic in (b"XD2B", b"XDB3"):      # a single-block directory: its leaf and tail close the block
            leaf_count = struct.unpack(">I", block[-8:-4])[0]
            end = len(block) - 8 - 8 * leaf_count
            if end < at:
                raise ReadError("an XFS directory block whose leaf overruns its data")
        while at + 8 <= end:
            if block[at:at + 2] == b"\xff\xff":          # a free span
                length = struct.unpack(">H", block[at + 2:at + 4])[0]
                if length < 8 or length % 8 or at + length > end:
                    raise ReadError("an XFS directory block with a broken free span")
                at += length
                continue
            number, name_len = struct.unpack(">QB", block[at:at + 9])
            length = (8 + 1 + name_len + (1 if self.has_ftype else 0) + 2 + 7) // 8 * 8
            if not name_len or at + length > end:
                raise ReadError("an XFS directory entry overruns its block")
            names[block[at + 9:at + 9 + name_len].decode("utf-8", "surrogateescape")] = number
            if len(names) > MAX_DIR_ENTRIES:
                raise GuestPathError("a directory with more entries than the reader reads")
            at += length

    def _shortform(self, ino: dict[str, Any]) -> dict[str, int]:
        raw = ino["fork"][:ino["size"]]
        if len(raw) < 6:
            raise ReadError(f"XFS directory {ino['number']}: a short-form header cut short")
        count, count8 = raw[0], raw[1]       # entries; of them, with 8-byte inode numbers (then all are)
        width = 8 if count8 else 4
        parent = int.from_bytes(raw[2:2 + width], "big")
        names = {".": ino["number"], "..": parent}
        at = 2 + width
        for _ in range(count):
            if at + 3 > len(raw):
                raise ReadError(f"XFS directory {ino['number']}: a short-form entry past its end")
            name_len = raw[at]
            name = raw[at + 3:at + 3 + name_len]
            at += 3 + name_len + (1 if self.has_ftype else 0)
            if not name_len or at + width > len(raw):
                raise ReadError(f"XFS directory {ino['number']}: a short-form entry past its end")
            names[name.decode("utf-8", "surrogateescape")] = int.from_bytes(raw[at:at + width], "big")
            at += width
        return names

    def read_link(self, ino: dict[str, Any]) -> str:
        if ino["size"] > 1024:
            raise GuestPathError("a symbolic link longer than XFS allows")
        if ino["format"] == 1:
            raw = ino["fork"][:ino["size"]]
        elif not self.v5:
            raw = self.read_inode(ino, 1024)
        else:                                # v5 remote links: each block starts with a 56-byte header
            raw = b""
            for _logical, physical, count in sorted(self._mapped(ino)):
                for i in range(count):
                    block = self._blocks(physical + i)
                    if block[:4] != b"XSLM":
                        raise ReadError("an XFS symbolic link block without its magic")
                    length = struct.unpack(">I", block[8:12])[0]
                    raw += block[56:56 + min(length, self.block_size - 56)]
            raw = raw[:ino["size"]]
        return raw.decode("utf-8", "surrogateescape")


# --- LVM2: a root logical volume on physical volumes -------------------------------------------

LVM_MDA_MAGIC = b" LVM2 x[5A%r0N*>"
MAX_LVM_SEGMENTS = 1024
MAX_LVM_DEPTH = 16
_LVM_TOKEN = re.compile(r'\s+|#[^\n]*|"(?:[^"\\]|\\.)*"|[{}\[\]=,]|[^\s{}\[\]=,"#]+')


def _lvm_tokens(text: str) -> list[str]:
    tokens = []
    for match in _LVM_TOKEN.finditer(text):
        token = match.group(0)
        if token[0].isspace() or token[0] == "#":
            continue
        tokens.append(token)
    return tokens



def parse_lvm_config(text: str) -> dict[str, Any]:
    """LVM2's text metadata (`name = value`, `name { ... }`, values: numbers, "strings", [lists])."""
    tokens, at = _lvm_tokens(text), 0

    def value(inside_list: bool = False) -> Any:      # LVM's lists are flat: a '[' inside one is refused
        nonlocal at
        token = tokens[at]
        at += 1
        if token == "[" and not inside_list:
            items = []
            while tokens[at] != "]":
                if tokens[at] == ",":
                    at += 1
                    continue
                items.append(value(inside_list=True))
            at += 1
            return items
        if token.startswith('"'):
            return token[1:-1].replace('\\"', '"').replace("\\\\", "\\")
        try:
            return int(token)
        except ValueError:
            try:
                return float(token)
            except ValueError:
                raise ReadError(f"LVM metadata: {token[:40]!r} is not a value") from None

    def section(depth: int) -> dict[str, Any]:
        nonlocal at
        if depth > MAX_LVM_DEPTH:
            raise ReadError("LVM metadata nested deeper than possible")
        out: dict[str, Any] = {}
        while at < len(tokens) and tokens[at] != "}":
            name = tokens[at]
            at += 1
            if tokens[at] == "=":
                at += 1
                out[name] = value()
            elif tokens[at] == "{":
                at += 1
                out[name] = section(depth + 1)
                if tokens[at] != "}":
                    raise ReadError("LVM metadata: a section left open")
                at += 1
            else:
                raise ReadError(f"LVM metadata: {tokens[at][:40]!r} after {name[:40]!r}")
        return out

    try:
        parsed = section(0)
    except IndexError:
        raise ReadError("LVM metadata ends in the middle") from None
    if at != len(tokens):
        raise ReadError("LVM metadata: a '}' without its section")
    return parsed


def lvm_physical_volume(dev: BlockDevice) -> dict[str, Any]:
    """A PV's uuid and its volume group's text metadata: label, PV header, metadata area."""
    for sector in range(4):
        label = dev.read(sector * 512, 512)
        if label[:8] == b"LABELONE" and label[24:32] == b"LVM2 001":
            break
    else:
        raise ReadError("no LVM2 label")
    header_at = sector * 512 + struct.unpack("<I", label[20:24])[0]
    if not sector * 512 + 32 <= header_at <= sector * 512 + 512 - 40 - 16 * 4:
        raise ReadError("LVM2 label: its PV header lies outside the label sector")
    header = dev.read(header_at, sector * 512 + 512 - header_at)
    pv_uuid = header[:32].decode("ascii", "replace")
    areas: list[list[tuple[int, int]]] = [[], []]      # data areas, then metadata areas
    at, which = 40, 0
    while which < 2:
        if at + 16 > len(header):
            raise ReadError("LVM2 PV header: its area lists run past the label sector")
        offset, size = struct.unpack("<QQ", header[at:at + 16])
        at += 16
        if offset == 0 and size == 0:
            which += 1
            continue
        areas[which].append((offset, size))
    text = None
    for mda_start, mda_size in areas[1]:
        if mda_start + mda_size > dev.size or mda_size < 1024:
            raise ReadError("an LVM2 metadata area outside its physical volume")
        mda = dev.read(mda_start, 512)
        if mda[4:20] != LVM_MDA_MAGIC or struct.unpack("<Q", mda[24:32])[0] != mda_start:
            raise ReadError("an LVM2 metadata area without its header")
        offset, size, checksum = struct.unpack("<QQI", mda[40:60])
        if not offset or not size:
            continue
        if size > MAX_FILE_BYTES or not 512 <= offset < mda_size:
            raise ReadError("LVM2 metadata of implausible size or place")
        first = min(size, mda_size - offset)           # the area is a ring after its 512-byte header
        raw = dev.read(mda_start + offset, first) + dev.read(mda_start + 512, size - first)
        if zlib.crc32(raw, 0xF597A6CF ^ 0xFFFFFFFF) ^ 0xFFFFFFFF != checksum:     # LVM2's seeded CRC-32
            raise ReadError("LVM2 metadata whose checksum does not match (LVM itself would not use it)")
        text = raw.split(b"\0")[0].decode("utf-8", "replace")
        break
    if text is None:
        raise ReadError("an LVM2 physical volume without metadata")
    return {"uuid": pv_uuid, "metadata": parse_lvm_config(text)}


class LogicalVolume:
    """An LV's bytes: its linear segments, each a run of extents on one physical volume."""

    def __init__(self, name: str, segments: list[tuple[int, int, BlockDevice, int]]) -> None:
        self.name, self.segments = name, segments        # (LV byte start, length, PV, PV byte start)
        self.size = sum(length for _s, length, _d, _o in segments)

    def read(self, offset: int, length: int) -> bytes:
        if offset < 0 or length < 0 or offset + length > self.size:
            raise ReadError(f"a read at {offset}+{length} goes past the end of logical volume {self.name}")
        out = bytearray()
        for start, seg_length, pv, pv_start in self.segments:
            if length <= 0:
                break
            if offset >= start + seg_length:
                continue
            take = min(length, start + seg_length - offset)
            out += pv.read(pv_start + offset - start, take)
            offset, length = offset + take, length - take
        return bytes(out)


def logical_volumes(pvs: dict[str, tuple[dict[str, Any], BlockDevice]],
                    errors: list[str]) -> list[tuple[dict[str, Any], LogicalVolume]]:
    """The linear LVs of every volume group whose PVs are all on this disk."""
    found: list[tuple[dict[str, Any], LogicalVolume]] = []
    groups: dict[str, dict[str, Any]] = {}
    for _uuid, (pv, _dev) in pvs.items():
        for name, vg in pv["metadata"].items():
            if isinstance(vg, dict) and isinstance(vg.get("physical_volumes"), dict):
                seqno = vg.get("seqno") if isinstance(vg.get("seqno"), int) else 0
                if name not in groups or seqno > groups[name].get("seqno", 0):   # the newest copy wins
                    groups[name] = {**vg, "seqno": seqno}
    for vg_name, vg in groups.items():
        try:
            found += _group_volumes(vg_name, vg, pvs)
        except (ReadError, KeyError, TypeError, ValueError, AttributeError) as exc:    # metadata of the wrong shape
            reason = f"its metadata lacks {exc}" if isinstance(exc, KeyError) else str(exc) or type(exc).__name__
            errors.append(f"LVM volume group {vg_name}: {reason}")
    return found


def _group_volumes(vg_name: str, vg: dict[str, Any],
                   pvs: dict[str, tuple[dict[str, Any], BlockDevice]]) -> list[tuple[dict[str, Any], LogicalVolume]]:
    extent = int(vg["extent_size"]) * 512
    if not 512 <= extent <= 1 << 40:
        raise ReadError(f"extent size {extent} is not possible")
    pv_devs: dict[str, tuple[BlockDevice, int, int]] = {}
    for pv_name, pv in vg["physical_volumes"].items():
        if not isinstance(pv, dict):
            continue
        on_disk = pvs.get(str(pv.get("id", "")).replace("-", ""))
        if on_disk is not None:
            pe_start, pe_count = int(pv["pe_start"]) * 512, int(pv["pe_count"])
            if pe_start + pe_count * extent > on_disk[1].size:
                raise ReadError(f"physical volume {pv_name} claims more extents than its partition holds")
            pv_devs[pv_name] = (on_disk[1], pe_start, pe_count)
    found = []
    claimed: list[tuple[str, int, int]] = []      # (PV, first extent, end): no two segments may share one
    for lv_name, lv in (vg.get("logical_volumes") or {}).items():
        if not isinstance(lv, dict):
            continue
        segments: list[tuple[int, int, BlockDevice, int]] = []
        expected, problem = 0, None
        keyed = sorted((v for k, v in lv.items() if k.startswith("segment") and isinstance(v, dict)),
                       key=lambda s: int(s["start_extent"]))
        if len(keyed) > MAX_LVM_SEGMENTS:
            raise ReadError(f"logical volume {lv_name} has more segments than are read")
        for seg in keyed:
            start, count = int(seg["start_extent"]), int(seg["extent_count"])
            stripes = seg.get("stripes") or []
            if seg.get("type") != "striped" or int(seg.get("stripe_count", 0)) != 1 or len(stripes) != 2:
                problem = f"a {seg.get('type')} segment (only linear ones are read)"
                break
            if start != expected or count <= 0:
                problem = "segments that leave gaps or overlap"
                break
            pv = pv_devs.get(str(stripes[0]))
            if pv is None:
                problem = f"extents on physical volume {stripes[0]}, not on this disk"
                break
            dev, pe_start, pe_count = pv
            if not 0 <= int(stripes[1]) <= int(stripes[1]) + count <= pe_count:
                problem = f"extents past the end of physical volume {stripes[0]}"
                break
            segments.append((start * extent, count * extent, dev, pe_start + int(stripes[1]) * extent))
            claimed.append((str(stripes[0]), int(stripes[1]), int(stripes[1]) + count))
            expected = start + count
        info: dict[str, Any] = {"number": f"{vg_name}/{lv_name}", "logical_volume": True,
                                "size": expected * extent}
        if problem is not None:
            info.update(type="unknown", error=f"logical volume {vg_name}/{lv_name}: {problem}")
            found.append((info, LogicalVolume(info["number"], [])))
            continue
        found.append((info, LogicalVolume(info["number"], segments)))
    claimed.sort()
    for (pv_a, _first_a, end_a), (pv_b, first_b, _end_b) in zip(claimed, claimed[1:]):
        if pv_a == pv_b and first_b < end_a:
            raise ReadError(f"two segments claim extent {first_b} of physical volume {pv_a}")
    return found


# --- what a root filesystem tells ------------------------------------------------------------

ELF_MACHINES = {0x03: "i686", 0x3E: "x86_64", 0xB7: "aarch64", 0x28: "armv7l", 0xF3: "riscv64",
                0x15: "ppc64", 0x16: "s390x", 0x102: "loongarch64"}
MODULE_SUFFIXES = (".ko", ".ko.xz", ".ko.zst", ".ko.gz")
VIRTIO = {"virtio_blk": "kernel/drivers/block/virtio_blk", "virtio_net": "kernel/drivers/net/virtio_net"}


def _text(data: bytes | None) -> str | None:
    return None if data is None else data.decode("utf-8", "replace")


def _safe(errors: list[str], what: str, call: Any, default: Any) -> Any:
    try:
        return call()
    except (ReadError, GuestPathError, struct.error) as exc:
        errors.append(f"{what}: {exc}")
        return default


def read_root(fs: GuestFs, errors: list[str]) -> dict[str, Any]:
    facts: dict[str, Any] = {}
    facts["os_release"] = _text(_safe(errors, "/etc/os-release", lambda: fs.read_file("/etc/os-release")
                                      or fs.read_file("/usr/lib/os-release"), None))
    for name in ("/etc/redhat-release", "/etc/alpine-release", "/etc/debian_version", "/etc/hostname",
                 "/etc/fstab"):
        facts[posixpath.basename(name).replace("-", "_")] = _text(_safe(errors, name, lambda n=name: fs.read_file(
            n, 64 << 10), None))
    elf = _safe(errors, "/bin/sh", lambda: fs.read_file("/bin/sh", 64) or fs.read_file("/usr/bin/env", 64), None)
    if elf and elf[:4] == b"\x7fELF" and len(elf) >= 20:
        machine = struct.unpack("<H" if elf[5] == 1 else ">H", elf[18:20])[0]
        arch = ELF_MACHINES.get(machine, f"elf-machine-{machine}")
        if arch == "ppc64" and elf[5] == 1:
            arch = "ppc64le"
        facts["architecture"] = arch
    boot = _safe(errors, "/boot", lambda: fs.listdir("/boot"), [])
    facts["boot_files"] = [n for n in boot if n.startswith(("vmlinuz", "vmlinux", "bzImage", "Image", "kernel"))]
    modules_dirs = _safe(errors, "/lib/modules", lambda: fs.listdir("/lib/modules"), [])[:32]
    kernels = []
    for version in modules_dirs:
        base = f"/lib/modules/{version}"
        builtin = _text(_safe(errors, f"{base}/modules.builtin", lambda b=base: fs.read_file(
            f"{b}/modules.builtin", 4 << 20), None)) or ""
        drivers: dict[str, str | None] = {}
        for driver, rel in VIRTIO.items():
            if f"{rel}.ko\n" in builtin or builtin.endswith(f"{rel}.ko"):
                drivers[driver] = "built-in"
            elif any(_safe(errors, f"{base}/{rel}", lambda s=s, b=base, r=rel: fs.exists(f"{b}/{r}{s}"), False)
                     for s in MODULE_SUFFIXES):
                drivers[driver] = "module"
            else:
                drivers[driver] = None
        kernels.append({"version": version, "drivers": drivers})
    facts["kernels"] = kernels
    present = {}
    for path in ("/boot/grub/grub.cfg", "/boot/grub2/grub.cfg", "/boot/grub/i386-pc", "/boot/grub/x86_64-efi",
                 "/usr/lib/grub/x86_64-efi", "/boot/extlinux/extlinux.conf", "/boot/syslinux/syslinux.cfg",
                 "/boot/loader/entries", "/usr/bin/cloud-init", "/etc/cloud/cloud.cfg", "/usr/sbin/sshd",
                 "/usr/sbin/dropbear", "/etc/ssh/sshd_config", "/boot/efi/EFI",
                 "/lib/systemd/systemd", "/sbin/init"):
        present[path] = _safe(errors, path, lambda p=path: fs.exists(p), False)
    facts["present"] = present
    facts["free_bytes"] = fs.free_blocks * fs.block_size
    facts["total_bytes"] = fs.blocks_count * fs.block_size
    return facts


ROOT_MARKERS = ("/etc/os-release", "/usr/lib/os-release", "/etc/redhat-release", "/etc/alpine-release")


def inspect(source: FileSource | RangedSource, fmt: str) -> dict[str, Any]:
    disk: Disk = Qcow2Disk(source) if fmt == "qcow2" else Disk(source)
    facts: dict[str, Any] = {"virtual_size": disk.size, "file_size": disk.file_size, "errors": []}
    errors: list[str] = facts["errors"]
    table, parts, boot_code = partitions(disk)
    facts.update(partition_table=table, mbr_boot_code=boot_code)
    devices: list[tuple[dict[str, Any], BlockDevice]] = []
    if table == "none":
        devices.append(({"number": 0, "start": 0, "size": disk.size, "whole_disk": True}, disk))
    for p in parts:
        if p["start"] + p["size"] > disk.size:
            p["beyond_disk"] = True
            errors.append(f"partition {p['number']} ends past the disk's virtual size")
            continue
        if not p.get("extended"):
            devices.append((p, Slice(disk, p["start"], p["size"])))
    facts["partitions"] = [p for p, _ in devices] + [p for p in parts if p.get("beyond_disk")]
    pvs: dict[str, tuple[dict[str, Any], BlockDevice]] = {}
    for part, dev in devices:
        part.update(_safe(errors, f"partition {part['number']}", lambda d=dev: probe(d), {"type": "unknown"}))
        if part["type"] == "LVM2_member":
            pv = _safe(errors, f"partition {part['number']} (LVM2)", lambda d=dev: lvm_physical_volume(d), None)
            if pv is not None:
                pvs[pv["uuid"]] = (pv, dev)
    if pvs:
        for info, lv in logical_volumes(pvs, errors):
            facts["partitions"].append(info)
            if info.get("error"):
                errors.append(info["error"])
                continue
            info.update(_safe(errors, f"logical volume {info['number']}", lambda d=lv: probe(d), {"type": "unknown"}))
            devices.append((info, lv))
    root = None
    for part, dev in devices:
        if root is None and part["type"] in ("ext2", "ext3", "ext4", "xfs"):
            try:
                fs: GuestFs = XfsFs(dev) if part["type"] == "xfs" else ExtFs(dev)
                if any(fs.exists(m) for m in ROOT_MARKERS):
                    root = (part, fs)
            except (ReadError, GuestPathError, struct.error) as exc:
                part["error"] = str(exc)
                errors.append(f"partition {part['number']} ({part['type']}): {exc}")
    if root is not None:
        root[0]["root"] = True
        facts["root"] = read_root(root[1], errors)
    facts["bytes_read"] = disk.bytes_read
    return facts


USAGE = "usage: guest_reader.py FILE FORMAT | guest_reader.py --ranges FD SIZE FORMAT"


def main(argv: list[str]) -> int:
    try:
        if len(argv) == 3:
            source: FileSource | RangedSource = FileSource(argv[1])
        elif len(argv) == 5 and argv[1] == "--ranges":
            source = RangedSource(int(argv[2]), int(argv[3]))
        else:
            print(json.dumps({"error": USAGE}))
            return 2
        facts = inspect(source, argv[-1])
    except (ReadError, OSError, struct.error, RecursionError, MemoryError, ValueError) as exc:
        print(json.dumps({"error": str(exc) or type(exc).__name__}))
        return 0
    print(json.dumps(facts))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
