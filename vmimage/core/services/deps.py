"""What the use cases need from outside, passed in by bootstrap.py."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime, timezone

from vmimage.core.errors import Invalid
from vmimage.core.ports import BlobStore, ContentInspector, DiskDriver, Hypervisor, UnitOfWorkFactory
from vmimage.core.quotas import Limits


def utcnow() -> datetime:
    return datetime.now(timezone.utc).replace(microsecond=0, tzinfo=None)


@dataclass
class Deps:
    uow: UnitOfWorkFactory
    stores: dict[str, BlobStore]
    default_store: str
    limits: Limits
    enforce_format_match: bool
    new_inspector: Callable[[], ContentInspector]
    clock: Callable[[], datetime] = utcnow
    disks: DiskDriver | None = None
    hypervisor: Hypervisor | None = None
    submit_job: Callable[[], None] = lambda: None   # wakes the job engine after a commit
    # Directories whose files callers may register as images; empty: registration is off.
    import_roots: list[str] = field(default_factory=list)

    def store(self, name: str | None) -> BlobStore:
        name = name or self.default_store
        if name not in self.stores:
            raise Invalid(f"Unknown store '{name}'", store=name)
        return self.stores[name]
