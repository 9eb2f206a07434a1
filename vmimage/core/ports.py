"""The ports the core talks through. Adapters implement them; bootstrap.py picks which."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Protocol

from vmimage.core.images import Image
from vmimage.core.listing import ImageQuery
from vmimage.core.members import Member


class BlobWriter(Protocol):
    def write(self, chunk: bytes) -> None: ...
    def commit(self) -> None:
        """Make the data durable (fsync) and visible under its key."""
    def abort(self) -> None:
        """Drop everything written; leaves nothing behind."""


class BlobStore(Protocol):
    name: str

    def writer(self, key: str) -> BlobWriter: ...
    def read(self, key: str, start: int = 0, end: int | None = None,
             chunk_size: int = 1 << 20) -> Iterator[bytes]:
        """Bytes [start, end) of the blob, in chunks."""
    def delete(self, key: str) -> None: ...
    def exists(self, key: str) -> bool: ...
    def size(self, key: str) -> int: ...
    def cleanup_partial(self) -> int:
        """Remove leftovers of writes that never committed; returns how many."""


@dataclass
class InspectionReport:
    """What a content inspector saw in one pass; the core decides what it means."""
    formats: list[str]                       # detected formats; ["raw"] when nothing specific
    virtual_sizes: dict[str, int] = field(default_factory=dict)
    safety_failures: dict[str, str] = field(default_factory=dict)


class ContentInspector(Protocol):
    def feed(self, chunk: bytes) -> None: ...
    def report(self) -> InspectionReport: ...


class ImageRepository(Protocol):
    def add(self, image: Image) -> None: ...
    def get(self, image_id: str, for_update: bool = False) -> Image | None:
        """The image, deleted ones included (ids are never reused)."""
    def save(self, image: Image) -> None: ...
    def list(self, query: ImageQuery) -> list[Image]: ...
    def usage(self, project_id: str) -> tuple[int, int]:
        """(number of live images, bytes of their data) for a project."""
    def lock_project(self, project_id: str) -> None:
        """Serialise quota-checked writes of one project until the transaction ends."""
    def get_member(self, image_id: str, member_id: str) -> Member | None: ...
    def list_members(self, image_id: str) -> list[Member]: ...
    def save_member(self, member: Member) -> None: ...
    def delete_member(self, image_id: str, member_id: str) -> None: ...
    def quota_overrides(self, project_id: str) -> dict[str, int]: ...


class UnitOfWork(Protocol):
    images: ImageRepository

    def __enter__(self) -> "UnitOfWork": ...
    def __exit__(self, *exc: object) -> None: ...
    def commit(self) -> None: ...


class UnitOfWorkFactory(Protocol):
    def __call__(self, write: bool = False) -> UnitOfWork: ...
