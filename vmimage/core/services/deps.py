"""What the use cases need from outside, passed in by bootstrap.py."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime, timedelta, timezone

from vmimage.core.errors import Invalid
from vmimage.core.images import Location
from vmimage.core.jobs import JobLimits
from vmimage.core.liveness import new_worker_id
from vmimage.core.ports import (BlobStore, BucketObjects, ContentInspector, DiskDriver, GuestReader, Hypervisor, IdentityAdmin,
                                ImageCache, UnitOfWork, UnitOfWorkFactory, UrlFetcher)
from vmimage.core.quotas import Limits
from vmimage.core.upload_slots import UploadSlots


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
    disks: DiskDriver
    hypervisor: Hypervisor
    fetcher: UrlFetcher
    clock: Callable[[], datetime] = utcnow
    submit_job: Callable[[], None] = lambda: None   # wakes the job engine after a commit
    wake_reaper: Callable[[], None] = lambda: None  # wakes the data reaper after a commit
    # Directories whose files callers may register as images; empty: registration is off.
    import_roots: list[str] = field(default_factory=list)
    # Users (uids) besides the service's own whose files under the roots may be registered.
    import_owners: list[int] = field(default_factory=list)
    # Several named stores are offered to callers (Glance's multi-store); else one, unnamed.
    multi_store: bool = False
    # Where an import naming no store goes: every writable store, or only the default one.
    import_to_all_stores: bool = True
    import_convert_to: str | None = None      # disk format imports are converted to
    import_lock_stale: timedelta = timedelta(hours=1)
    # This node's image cache (None: caching is off) and the wake-up of its prefetcher.
    cache: ImageCache | None = None
    wake_prefetcher: Callable[[], None] = lambda: None
    # The object storage's buckets that projects import from and export to (None: no S3 server).
    buckets: BucketObjects | None = None
    # The buckets the stores keep images in (bucket: store names): never granted to a project.
    store_buckets: dict[str, list[str]] = field(default_factory=dict)
    # Concurrent uploads and stages per project (this process).
    upload_slots: UploadSlots = field(default_factory=UploadSlots)
    # This process, as the owner of the uploads it takes (core/services/uploads.py).
    worker_id: str = field(default_factory=new_worker_id)
    # Jobs per project running at once (every process) and waiting (core/jobs.py).
    job_limits: JobLimits = field(default_factory=JobLimits)
    # The built-in identity's administration (None: not offered, e.g. in unit tests).
    identity_admin: IdentityAdmin | None = None
    # Glance's per-store weight (unnamed stores weigh 0): locations heaviest first, and the
    # heaviest copy is the one a download reads.
    store_weights: dict[str, int] = field(default_factory=dict)
    # The regions served, the default first, and the region each writable store serves
    # (a store not listed serves the default region).
    regions: tuple[str, ...] = ("RegionOne",)
    store_regions: dict[str, str] = field(default_factory=dict)

    @property
    def default_region(self) -> str:
        return self.regions[0]

    def region_of(self, caller_region: str | None) -> str:
        """Where a caller acts: its region, or the default one."""
        return caller_region or self.default_region

    def require_region(self, region: object, field_name: str = "region") -> str:
        if not isinstance(region, str) or region not in self.regions:
            raise Invalid(f"Unknown region '{region}'", field=field_name, reason="unknown_region")
        return region

    def stores_of_region(self, region: str) -> list[str]:
        """The writable stores that keep a region's images, its home store first."""
        return [name for name in self.writable_stores
                if self.store_regions.get(name, self.default_region) == region]

    def home_store(self, region: str | None) -> str:
        """Where a region's image data goes when no store is named."""
        found = self.stores_of_region(self.region_of(region))
        return found[0] if found else self.default_store
    # Reads what is inside an image (image insight); None: images are not inspected.
    guest_reader: GuestReader | None = None

    @property
    def writable_stores(self) -> list[str]:
        return [name for name, store in self.stores.items() if not store.read_only]

    def store_for_url(self, url: str) -> BlobStore | None:
        """The read-only store that serves this URL's scheme (locations added by callers)."""
        scheme = url.split(":", 1)[0].lower()
        for store in self.stores.values():
            if store.read_only and store.kind == "http" and scheme in ("http", "https"):
                return store
        return None

    def limits_for(self, uow: UnitOfWork, project_id: str) -> Limits:
        """The project's limits: the defaults with its overrides."""
        return self.limits.for_project(uow.images.quota_overrides(project_id))

    def by_weight(self, locations: list[Location]) -> list[Location]:
        """Heaviest store first (Glance's store weights); equal weights keep their order."""
        return sorted(locations, key=lambda loc: -self.store_weights.get(loc.store, 0))

    def location_url(self, loc: Location) -> str:
        """A location as a URL (file:///..., http://...); its key when the store is gone."""
        store = self.stores.get(loc.store)
        return store.url(loc.key) if store is not None else loc.key

    def store(self, name: str | None) -> BlobStore:
        name = name or self.default_store
        if name not in self.stores:
            raise Invalid(f"Unknown store '{name}'", store=name)
        return self.stores[name]
