"""Registering a file of the vmimage host as an image.

A caller names a path on the host; it could name any file the service can read, so the
path is confined: it must lie inside one of the configured import roots (none by default:
registration is off), contain no `..`, and pass through no symbolic link. The file is
opened component by component from the root with O_NOFOLLOW, so a link swapped in after a
check cannot redirect the open. The file itself must have one link only (a hard link made
inside a root to a file elsewhere would otherwise expose it) and belong to the service's own
user or to one of the configured import owners. Its bytes then take the upload path (inspection, safety
checks, hashes, quotas) into the store; the original is only read, never moved or deleted.
"""

from __future__ import annotations

import os
import stat
from collections.abc import Iterator
from typing import Any, BinaryIO

from vmimage.core.errors import InvalidSource
from vmimage.core.images import Image, ImageSource, ImageStatus
from vmimage.core.policy import Caller, require_writer
from vmimage.core.ports import READ_CHUNK
from vmimage.core.services.deps import Deps
from vmimage.core.services.image_data import begin_saving, receive_data
from vmimage.core.services.images import create_image

IMPORTABLE_FORMATS = ("iso", "raw", "qcow2", "vhd", "vhdx", "vmdk")
_SNIFF_BYTES = 4 << 20     # every supported format announces itself in its first sectors
_DIR_FLAGS = os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW | os.O_CLOEXEC
# O_NONBLOCK: opening a FIFO must not hang; it is refused right after, as not a regular file.
_FILE_FLAGS = os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK | os.O_CLOEXEC


def open_confined(roots: list[str], path: Any, owners: list[int] | None = None) -> BinaryIO:
    """The regular file at path, opened for reading, if it lies inside one of the roots.

    owners: uids besides the service's own whose files may be registered."""
    if not roots:
        raise InvalidSource("Registering host files is not enabled (no import roots)")
    if not isinstance(path, str) or not path.startswith("/") or "\0" in path:
        raise InvalidSource("The source path must be an absolute path", path=path)
    parts = [p for p in path.split("/") if p not in ("", ".")]
    if ".." in parts:
        raise InvalidSource("The source path must not contain '..'", path=path)
    for root in roots:
        root_parts = [p for p in os.path.realpath(root).split("/") if p]
        if parts[:len(root_parts)] == root_parts and len(parts) > len(root_parts):
            source = _open_below(os.path.realpath(root), parts[len(root_parts):], path)
            try:
                _check_file(os.fstat(source.fileno()), path, owners or [])
            except BaseException:
                source.close()
                raise
            return source
    raise InvalidSource("The source path is outside the import roots", path=path)


def _open_below(root: str, parts: list[str], path: str) -> BinaryIO:
    fds: list[int] = []
    try:
        fds.append(os.open(root, _DIR_FLAGS))
        for part in parts[:-1]:
            fds.append(os.open(part, _DIR_FLAGS, dir_fd=fds[-1]))
        fd = os.open(parts[-1], _FILE_FLAGS, dir_fd=fds[-1])
    except OSError as exc:   # ELOOP for a link, ENOTDIR, ENOENT, EACCES...
        raise InvalidSource(f"The source path cannot be opened: {exc.strerror}", path=path) from None
    finally:
        for dir_fd in fds:
            os.close(dir_fd)
    if not stat.S_ISREG(os.fstat(fd).st_mode):
        os.close(fd)
        raise InvalidSource("The source path is not a regular file", path=path)
    os.set_blocking(fd, True)
    return os.fdopen(fd, "rb", buffering=0)


def _check_file(st: os.stat_result, path: str, owners: list[int]) -> None:
    """Checked on the opened file, so what was checked is what is read."""
    if st.st_nlink != 1:
        raise InvalidSource("The source path has more than one hard link", path=path)
    if st.st_uid != os.geteuid() and st.st_uid not in owners:
        raise InvalidSource("The source path belongs to a user whose files may not be imported", path=path)


def _chunks(source: BinaryIO) -> Iterator[bytes]:
    while chunk := source.read(READ_CHUNK):
        yield chunk


def _sniff_format(deps: Deps, source: BinaryIO) -> str:
    """The disk format the file's first sectors announce; the full pass confirms it."""
    inspector = deps.new_inspector()
    inspector.feed(os.pread(source.fileno(), _SNIFF_BYTES, 0))
    formats = set(inspector.report().formats) - {"gpt"}   # a partition table alone: raw
    found = "iso" if "iso" in formats else (formats.pop() if len(formats) == 1 else "raw")
    if found not in IMPORTABLE_FORMATS:
        raise InvalidSource(f"Files in {found} format cannot be registered", detected=found)
    return found


def import_host_file(deps: Deps, caller: Caller, path: Any, attributes: dict[str, Any],
                     properties: dict[str, Any], unique_name: bool = False) -> Image:
    """Create an image from a host file, synchronously: active when this returns, or gone."""
    require_writer(caller)
    with open_confined(deps.import_roots, path, deps.import_owners) as source:
        size = os.fstat(source.fileno()).st_size
        attributes = {**attributes, "disk_format": _sniff_format(deps, source), "container_format": "bare",
                      "source": ImageSource.FILE.value, "source_ref": path}
        image = create_image(deps, caller, attributes, properties, unique_name=unique_name)
        try:
            image = begin_saving(deps, image.id)
            return receive_data(deps, image, _chunks(source), declared_size=size)
        except BaseException:
            _discard(deps, image.id)
            raise


def _discard(deps: Deps, image_id: str) -> None:
    """A failed registration leaves no image behind (its name stays free)."""
    with deps.uow(write=True) as uow:
        image = uow.images.get(image_id, for_update=True)
        if image is None or image.status == ImageStatus.DELETED:
            return
        image.move_to(ImageStatus.DELETED)
        image.updated_at = deps.clock()
        uow.images.save(image)
        uow.commit()
