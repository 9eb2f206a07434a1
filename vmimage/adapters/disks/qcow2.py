"""Qcow2DiskDriver: volumes and snapshots as qcow2 files in a local directory.

A disk built from an image or a snapshot is a copy-on-write overlay whose backing file is
that image's blob or that snapshot's file, so creating it is instant. A snapshot is a
standalone point-in-time copy (the overlay chain flattened). qemu-img runs only through
vmimage.imaging.qemu_img.
"""

from __future__ import annotations

import shutil
from collections.abc import Iterable
from pathlib import Path

from vmimage.core.errors import NotFound, UnsafeImage
from vmimage.imaging import qemu_img


class Qcow2DiskDriver:
    def __init__(self, root: str | Path, image_roots: Iterable[str | Path] = ()) -> None:
        self.root = Path(root)
        # Overlays may only sit on our snapshots or on image data in these directories.
        self._trusted = [(self.root / "snapshots").resolve(), *(Path(r).resolve() for r in image_roots)]
        for sub in ("volumes", "snapshots", "work"):
            (self.root / sub).mkdir(mode=0o700, parents=True, exist_ok=True)

    def path(self, volume_id: str) -> str:
        return str(self.root / "volumes" / f"{volume_id}.qcow2")

    def _snapshot_path(self, snapshot_id: str) -> Path:
        return self.root / "snapshots" / f"{snapshot_id}.qcow2"

    def _existing(self, volume_id: str) -> str:
        path = self.path(volume_id)
        if not Path(path).exists():
            raise NotFound(f"Disk of volume {volume_id} not found", volume_id=volume_id)
        return path

    def _trusted_backing(self, path: str) -> str | None:
        backing = qemu_img.backing_of(path)
        if backing is not None and not any(Path(backing).resolve().is_relative_to(r) for r in self._trusted):
            raise UnsafeImage(f"Disk {path} is backed by a file vmimage does not manage")
        return backing

    def create_from_image(self, volume_id: str, image_path: str, image_format: str, size_bytes: int) -> None:
        qemu_img.create_overlay(self.path(volume_id), image_path, image_format, size_bytes)

    def create_empty(self, volume_id: str, size_bytes: int) -> None:
        qemu_img.create(self.path(volume_id), size_bytes)

    def create_from_snapshot(self, volume_id: str, snapshot_id: str, size_bytes: int) -> None:
        source = self._snapshot_path(snapshot_id)
        if not source.exists():
            raise NotFound(f"Snapshot {snapshot_id} not found", snapshot_id=snapshot_id)
        qemu_img.create_overlay(self.path(volume_id), source, "qcow2", size_bytes)

    def snapshot(self, volume_id: str, snapshot_id: str) -> None:
        path = self._existing(volume_id)
        target = self._snapshot_path(snapshot_id)
        partial = target.with_suffix(".partial")
        try:
            qemu_img.convert(path, "qcow2", partial, "qcow2", allowed_backing=self._trusted_backing(path))
            partial.rename(target)
        finally:
            partial.unlink(missing_ok=True)

    def adopt_snapshot(self, snapshot_id: str, copy_path: str) -> None:
        qemu_img.check_file(copy_path, "qcow2")
        Path(copy_path).rename(self._snapshot_path(snapshot_id))

    def export(self, volume_id: str, target: str) -> None:
        path = self._existing(volume_id)
        qemu_img.convert(path, "qcow2", target, "qcow2", allowed_backing=self._trusted_backing(path))

    def resize(self, volume_id: str, size_bytes: int) -> None:
        path = self._existing(volume_id)
        qemu_img.resize(path, "qcow2", size_bytes, allowed_backing=self._trusted_backing(path))

    def grow_file(self, path: str, size_bytes: int) -> None:
        qemu_img.resize(path, "qcow2", size_bytes)

    def compact_file(self, source: str, target: str) -> None:
        qemu_img.convert(source, "qcow2", target, "qcow2")

    def virtual_size(self, volume_id: str) -> int:
        return qemu_img.info(self._existing(volume_id), "qcow2").virtual_size

    def delete(self, volume_id: str) -> None:
        Path(self.path(volume_id)).unlink(missing_ok=True)

    def delete_snapshot(self, snapshot_id: str) -> None:
        self._snapshot_path(snapshot_id).unlink(missing_ok=True)

    def snapshot_in_use(self, snapshot_id: str) -> bool:
        target = str(self._snapshot_path(snapshot_id).resolve())
        return any(qemu_img.backing_of(str(p)) == target for p in (self.root / "volumes").glob("*.qcow2"))

    def convert_file(self, source: str, source_format: str, target: str, target_format: str) -> None:
        qemu_img.convert(source, source_format, target, target_format)

    def work_dir(self, job_id: str) -> str:
        path = self.root / "work" / job_id
        path.mkdir(mode=0o700, parents=True, exist_ok=True)
        return str(path)

    def discard_work(self, job_id: str) -> None:
        shutil.rmtree(self.root / "work" / job_id, ignore_errors=True)

    def discard_all_work(self) -> None:
        for leftover in (self.root / "work").iterdir():
            shutil.rmtree(leftover, ignore_errors=True)
