"""Image insight's reader on the root layouts it reads (issue 25): the same root tree (an
openEuler-like root with a 5000-entry directory and 2000 module files of 20 KB) in a GPT
qcow2 as ext4 (the baseline), XFS v5, XFS v4 and XFS on an LVM linear volume in two segments.
Each image is read --repeat times by the reader's child process exactly as the service starts it
(`python -I -S guest_reader.py FILE qcow2`); printed per layout: the median wall seconds, the
bytes read against the image's allocated bytes, and the ratio of its seconds to ext4's.

    .venv/bin/python bench/inspect_layouts.py [--repeat 5]
"""

from __future__ import annotations

import json
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from _common import ROOT, base_parser

sys.path.insert(0, str(ROOT))
from tests.guest_images import (BIOS_BOOT_TYPE, LINUX_TYPE, LVM_TYPE, MiB, fake_root, gpt_disk,  # noqa: E402
                                lvm_pv, make_ext4, make_xfs, to_qcow2)

READER = ROOT / "vmimage" / "imaging" / "guest_reader.py"


def build(work: Path) -> dict[str, Path]:
    tree = fake_root(work / "tree", "openeuler")
    (tree / "usr/share/many").mkdir(parents=True)
    for i in range(5000):
        (tree / "usr/share/many" / f"entry-{i:05d}").write_text("x")
    mods = tree / "usr/lib/modules/6.1.0-18-amd64/kernel/extra"
    mods.mkdir(parents=True)
    for i in range(2000):
        (mods / f"m{i:04d}.ko.xz").write_bytes(bytes(20000))
    disks = {}
    layouts = {"ext4": lambda out: make_ext4(tree, out, 192 * MiB, label="root"),
               "xfs v5": lambda out: make_xfs(tree, out, 192 * MiB, label="root"),
               "xfs v4": lambda out: make_xfs(tree, out, 192 * MiB, label="root", extra=("-m", "crc=0"))}
    for name, make in layouts.items():
        fs = make(work / f"{name.replace(' ', '')}.fs")
        raw = gpt_disk(work / "disk.raw", 256 * MiB, [(BIOS_BOOT_TYPE, MiB, "BIOS boot"), (LINUX_TYPE, fs, "root")])
        disks[name] = to_qcow2(raw, work / f"{name.replace(' ', '')}.qcow2")
    fs = work / "xfsv5.fs"
    pv = lvm_pv(work / "pv.img", {"root": (fs, [(100, 92), (0, None)])})
    raw = gpt_disk(work / "disk.raw", 256 * MiB, [(BIOS_BOOT_TYPE, MiB, "BIOS boot"), (LVM_TYPE, pv, "lvm")])
    disks["xfs v5 on LVM"] = to_qcow2(raw, work / "lvm.qcow2")
    return disks


def read_once(disk: Path) -> tuple[float, dict]:
    started = time.perf_counter()
    out = subprocess.run([sys.executable, "-I", "-S", str(READER), str(disk), "qcow2"], capture_output=True,
                         text=True, check=True, timeout=120)
    elapsed = time.perf_counter() - started
    facts = json.loads(out.stdout)
    assert "error" not in facts and facts.get("root"), facts
    return elapsed, facts


def main() -> None:
    p = base_parser(__doc__)
    p.add_argument("--repeat", type=int, default=5)
    args = p.parse_args()
    with tempfile.TemporaryDirectory(dir=args.data_root) as tmp:
        disks = build(Path(tmp))
        results = {}
        for _round in range(args.repeat):          # layouts in turn, so each sees the same load
            for name, disk in disks.items():
                elapsed, facts = read_once(disk)
                results.setdefault(name, []).append((elapsed, facts["bytes_read"], disk.stat().st_size))
        base = statistics.median(e for e, _b, _s in results["ext4"])
        print(f"{'layout':<15} {'median s':>9} {'read KiB':>9} {'of file KiB':>12} {'read %':>7} {'x ext4':>7}")
        for name, runs in results.items():
            median = statistics.median(e for e, _b, _s in runs)
            read, size = runs[0][1], runs[0][2]
            print(f"{name:<15} {median:9.3f} {read / 1024:9.0f} {size / 1024:12.0f} {100 * read / size:6.2f}% "
                  f"{median / base:7.2f}")


if __name__ == "__main__":
    main()
