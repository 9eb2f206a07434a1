"""Every qemu-img call goes through here: inspect first, always `-f`, always under limits.

A disk file is inspected with the same oslo.utils inspector the upload path uses before
qemu-img touches it, so a file whose content disagrees with its declared format, or that
points at other files (backing files, data files, VMDK extents) we did not put there, is
refused. qemu-img then runs under prlimit: CPU seconds and address space are capped, as
upstream Glance does for `qemu-img info`, and dies with the process that started it.

qemu-img is a backend of its own (core/backends.py): at most `slots` processes run at once
(the rest wait their turn), and when it cannot be started at all, again and again, the
breaker refuses calls at once for a while.
"""

from __future__ import annotations

import json
import subprocess
from dataclasses import dataclass
from pathlib import Path

from oslo_utils.imageutils import format_inspector as fi

from vmimage.core.backends import Backend
from vmimage.core.errors import BackendUnavailable, UnsafeImage
from vmimage.imaging.children import die_with_parent

_INFO_LIMITS = ("--cpu=30", f"--as={1 << 30}")
_WORK_LIMITS = ("--cpu=3600", f"--as={4 << 30}")
# qemu-img's own name for each Glance disk format.
QEMU_FORMAT = {"raw": "raw", "qcow2": "qcow2", "vmdk": "vmdk", "vhd": "vpc", "vpc": "vpc", "vhdx": "vhdx",
               "vdi": "vdi", "iso": "raw", "ami": "raw", "ari": "raw", "aki": "raw", "ploop": "raw"}


@dataclass(frozen=True)
class DiskFacts:
    format: str
    virtual_size: int
    actual_size: int


# No stall deadline: a conversion takes as long as its data (the CPU limits above bound it).
BACKEND = Backend("qemu-img", slots=4, stall_seconds=None)


def configure(backend: Backend) -> None:
    """The process's qemu-img backend (bootstrap, from the settings)."""
    global BACKEND
    BACKEND = backend


def _run(args: list[str], limits: tuple[str, ...]) -> str:
    cmd = ["prlimit", *limits, "qemu-img", *args]
    with BACKEND.call() as call:
        try:
            # Dies with us (PR_SET_PDEATHSIG): a killed server leaves no qemu-img behind.
            done = subprocess.run(cmd, capture_output=True, text=True, timeout=7200, preexec_fn=die_with_parent())
        except (OSError, subprocess.TimeoutExpired) as exc:
            call.failed()
            raise BackendUnavailable(f"qemu-img could not run: {exc}") from exc
    if done.returncode != 0:
        raise BackendUnavailable(f"qemu-img {args[0]} failed: {done.stderr.strip()[:500]}")
    return done.stdout


def check_file(path: str | Path, declared: str, allowed_backing: str | Path | None = None) -> None:
    """Refuse a file whose content is not `declared` or that fails a safety check.

    allowed_backing: an overlay we made ourselves may point at exactly this file.
    """
    wanted = QEMU_FORMAT.get(declared, declared)
    try:
        inspector = fi.detect_file_format(str(path))
    except fi.ImageFormatError as exc:
        raise UnsafeImage(f"{path}: {exc}") from exc
    if inspector is None:       # oslo reached no decision (it says raw when nothing else matched)
        raise UnsafeImage(f"{path}: the format cannot be told")
    detected = "vpc" if inspector.NAME == "vhd" else inspector.NAME
    if detected in ("gpt", "iso") and wanted == "raw":
        detected = "raw"
    if detected != wanted:
        raise UnsafeImage(f"{path} holds {detected}, not {wanted}")
    try:
        inspector.safety_check()
    except fi.SafetyCheckFailed as exc:
        reasons = set(exc.failures)
        if allowed_backing is not None and reasons == {"backing_file"}:
            backing = backing_of(path)
            if backing and Path(backing).resolve() == Path(allowed_backing).resolve():
                return
        raise UnsafeImage(f"{path} fails safety checks: {', '.join(sorted(reasons))}") from exc


def backing_of(path: str | Path) -> str | None:
    data = json.loads(_run(["info", "-f", "qcow2", "--output=json", "-U", str(path)], _INFO_LIMITS))
    return data.get("full-backing-filename") or data.get("backing-filename")


def info(path: str | Path, fmt: str) -> DiskFacts:
    qfmt = QEMU_FORMAT.get(fmt, fmt)
    data = json.loads(_run(["info", "-f", qfmt, "--output=json", "-U", str(path)], _INFO_LIMITS))
    return DiskFacts(data["format"], int(data["virtual-size"]), int(data.get("actual-size", 0)))


def create(path: str | Path, size: int) -> None:
    _run(["create", "-q", "-f", "qcow2", str(path), str(size)], _INFO_LIMITS)


def create_overlay(path: str | Path, backing: str | Path, backing_format: str, size: int | None,
                   backing_checked: bool = False) -> None:
    """A copy-on-write qcow2 on top of `backing` (instant whatever the backing's size)."""
    if not backing_checked:
        check_file(backing, backing_format)
    args = ["create", "-q", "-f", "qcow2", "-b", str(Path(backing).resolve()),
            "-F", QEMU_FORMAT.get(backing_format, backing_format), str(path)]
    if size is not None:
        args.append(str(size))
    _run(args, _INFO_LIMITS)


def convert(src: str | Path, src_format: str, dst: str | Path, dst_format: str = "qcow2",
            allowed_backing: str | Path | None = None) -> None:
    """Write a standalone copy (backing chain flattened, zeroes left sparse)."""
    check_file(src, src_format, allowed_backing)
    _run(["convert", "-q", "-f", QEMU_FORMAT.get(src_format, src_format), "-O",
          QEMU_FORMAT.get(dst_format, dst_format), str(src), str(dst)], _WORK_LIMITS)


def resize(path: str | Path, fmt: str, size: int, allowed_backing: str | Path | None = None) -> None:
    check_file(path, fmt, allowed_backing)
    _run(["resize", "-q", "-f", QEMU_FORMAT.get(fmt, fmt), str(path), str(size)], _INFO_LIMITS)
