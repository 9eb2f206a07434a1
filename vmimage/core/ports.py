"""The ports the core talks through. Adapters implement them; bootstrap.py picks which."""

from __future__ import annotations

import builtins
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from datetime import datetime
from types import TracebackType
from typing import Any, BinaryIO, Protocol, Self

from vmimage.core.backends import Backend
from vmimage.core.audit import AuditRepository
from vmimage.core.buckets import BucketGrant
from vmimage.core.identity import AccessKey, AccessKeyGrant, Project, Token, User
from vmimage.core.images import Image, ImageStatus
from vmimage.core.inventory import Server, ServerQuery, Snapshot, Volume
from vmimage.core.jobs import Job, JobQuery, ProjectTurn
from vmimage.core.listing import ImageQuery
from vmimage.core.members import Member
from vmimage.core.metadefs import (Association, CatalogueQuery, MetadefObject, MetadefProperty, MetadefTag,
                                   Namespace, NamespaceQuery, ResourceType)
from vmimage.core.paging import Page
from vmimage.core.policy import Caller

# Chunk of the reads that feed downloads and copies (every store, the node cache): just under 1 MiB.
# `vmimage serve` has glibc map allocations of 1 MiB and more on their own (cli/main.py), so a
# 1 MiB read (a bytes object of 1 MiB plus its header) would be mapped, page-faulted in and
# unmapped for every chunk; 960 KiB comes from the heap and reuses the same pages.
READ_CHUNK = 960 << 10


class BlobWriter(Protocol):
    def write(self, chunk: bytes) -> None: ...
    def commit(self) -> None:
        """Make the data durable (fsync) and visible under its key."""
    def abort(self) -> None:
        """Drop everything written; leaves nothing behind."""


class BlobStore(Protocol):
    name: str
    kind: str            # "file", "http", ...
    read_only: bool      # holds data others put there (locations); never written by us
    description: str

    @property
    def backend(self) -> Backend | None:
        """The gate of every call when the store's data is behind something that can stall
        (an S3 server, the web; core/backends.py); None for this node's own files."""

    def url(self, key: str) -> str:
        """Where the blob is, as a location URL (file:///..., http://...)."""

    def writer(self, key: str) -> BlobWriter: ...
    def read(self, key: str, start: int = 0, end: int | None = None,
             chunk_size: int = READ_CHUNK) -> Iterator[bytes]:
        """Bytes [start, end) of the blob, in chunks."""
    def delete(self, key: str) -> None: ...
    def exists(self, key: str) -> bool: ...
    def size(self, key: str) -> int: ...
    def cleanup_partial(self, key: str | None = None) -> int:
        """Remove leftovers of writes that never committed (of one key, or all); how many."""
    def local_path(self, key: str) -> str | None:
        """A file path to the blob when the store keeps it on a local file system."""
    def open_file(self, key: str) -> BinaryIO | None:
        """The blob as an open local file (binary, read only; NotFound when it is missing), when
        the store keeps it in one; else None (read it with read())."""
    def check(self) -> None:
        """BackendUnavailable unless the store answers now (for readiness: cheap, no data)."""


@dataclass
class InspectionReport:
    """What a content inspector saw in one pass; the core decides what it means."""
    formats: list[str]                       # detected formats; ["raw"] when nothing specific
    virtual_sizes: dict[str, int] = field(default_factory=dict)
    safety_failures: dict[str, str] = field(default_factory=dict)


class FetchedData(Protocol):
    size: int | None     # what the server announced, if anything

    def __iter__(self) -> Iterator[bytes]: ...
    def close(self) -> None: ...


class UrlFetcher(Protocol):
    """Reads remote data under the URL policy (core/url_filter.py)."""

    def check(self, url: str) -> None:
        """Raise FilteredUrl now when the URL cannot be fetched under the policy."""
    def open(self, url: str, start: int = 0, end: int | None = None) -> FetchedData: ...
    def size(self, url: str) -> int | None: ...


class ContentInspector(Protocol):
    def feed(self, chunk: bytes) -> None: ...
    def report(self) -> InspectionReport: ...


class ImageRepository(Protocol):
    def add(self, image: Image) -> None: ...
    def add_unless_limited(self, image: Image, resource: str, default_limit: int) -> bool:
        """Add the image only when its project has no limit on `resource` (the project's
        own limit, else default_limit, is negative), checked in the same step: True. Then
        nothing else may be written in this unit of work, only its commit (the write may be
        committed already). When a limit is set, nothing is written: False."""
    def get(self, image_id: str, for_update: bool = False) -> Image | None:
        """The image, deleted ones included (ids are never reused)."""
    def get_by_ref(self, ref: str) -> Image | None:
        """The live image whose ref this is."""
    def get_by_seq(self, seq: int) -> Image | None:
        """The live image with this sequence number."""
    def ids_named(self, name: str, owner: str | None = None, region: str | None = None) -> list[str]:
        """Live images with exactly this name (of one project, when given)."""
    def save(self, image: Image) -> None: ...
    # `list` below is the method; builtins.list is the type from there on.
    def list(self, query: ImageQuery) -> Page[Image]:
        """The page of matches the query asks for, paged (and counted) in the database."""
    def ids_in_status(self, status: ImageStatus) -> builtins.list[str]:
        """Every image in this status, of every project."""
    def usage(self, project_id: str) -> tuple[int, int]:
        """(number of live images, bytes of their data) for a project."""
    def count_in_status(self, project_id: str, statuses: Iterable[ImageStatus]) -> int:
        """How many of the project's images are in one of these statuses."""
    def lock_project(self, project_id: str) -> None:
        """Serialise quota-checked writes of one project until the transaction ends."""
    def get_member(self, image_id: str, member_id: str) -> Member | None: ...
    def list_members(self, image_id: str) -> builtins.list[Member]: ...
    def save_member(self, member: Member) -> None: ...
    def delete_member(self, image_id: str, member_id: str) -> None: ...
    def quota_overrides(self, project_id: str) -> dict[str, int]: ...


@dataclass
class RangedSource:
    """An image's data where no local file holds it (an S3 object, a web location): its size
    and a callable giving bytes [offset, offset+length) (fewer only at the end)."""
    size: int
    read: Callable[[int, int], bytes]
    where: str = "the store"


class GuestReader(Protocol):
    """Reads what is inside a disk image without booting or mounting it (image insight)."""

    def read(self, source: str | RangedSource, disk_format: str) -> dict[str, Any]:
        """Raw facts (partitions, filesystems, what the root holds) of a local file path or
        of a ranged source (only the bytes the reading needs are asked for); raises
        InspectionFailed."""


class JobRepository(Protocol):
    """The persisted job queue."""

    def add(self, job: Job) -> None: ...
    def save(self, job: Job) -> None: ...
    def get(self, job_id: str, for_update: bool = False) -> Job | None: ...
    def page(self, query: JobQuery) -> Page[Job]:
        """The page of matches the query asks for, paged (and counted) in the database;
        ties in creation time go by id, in the same direction."""
    def for_image(self, image_id: str) -> list[Job]: ...
    def lock_queue(self, project_id: str) -> None:
        """Hold the project's line of waiting jobs until the transaction ends, so that counting
        it and adding to it are one step for concurrent submits (in every process)."""
    def waiting_count(self, project_id: str) -> int:
        """The project's jobs waiting to run (parts of jobs not counted)."""
    def lock_claims(self) -> None:
        """Hold the right to claim jobs until the transaction ends: claims, in every process,
        happen one at a time, each seeing the ones before it."""
    def turns(self) -> list[ProjectTurn]:
        """Every project with jobs waiting (parts of jobs not counted), with its running count
        and when its last job started."""
    def oldest_waiting(self, project_id: str) -> Job | None:
        """The project's oldest waiting job (never a part of another), locked for this
        transaction; one locked by another transaction is skipped."""
    def oldest_in_side_lane(self) -> Job | None:
        """The oldest waiting job of the side lane (core/jobs.py SIDE_LANE_KINDS), locked for
        this transaction; one locked by another transaction is skipped."""
    def running(self) -> list[Job]: ...
    def counts(self) -> dict[tuple[str, str], int]:
        """How many jobs there are by (kind, status), parts of jobs not counted."""
    def heartbeat(self, worker: str, now: datetime) -> None:
        """The worker's running jobs are alive at `now`."""


class InventoryRepository(Protocol):
    """Servers, their volumes, and snapshots; deleted ones are not found."""

    def add_server(self, server: Server) -> None:
        """Also numbers it (server.seq)."""
    def save_server(self, server: Server) -> None: ...
    def get_server(self, server_id: str, for_update: bool = False) -> Server | None: ...
    def list_servers(self, query: ServerQuery) -> Page[Server]:
        """The page of live servers the query asks for, paged (and counted) in the database."""
    def server_ids_where(self, seq: int | None = None, name: str | None = None) -> list[str]:
        """Live servers with this sequence number or exact name."""
    def image_in_use(self, image_id: str) -> bool:
        """Whether a live volume was made from the image."""

    def add_volume(self, volume: Volume) -> None:
        """Also numbers it (volume.seq)."""
    def save_volume(self, volume: Volume) -> None: ...
    def get_volume(self, volume_id: str, for_update: bool = False) -> Volume | None: ...
    def volume_ids_where(self, seq: int | None = None, name: str | None = None) -> list[str]:
        """Live volumes with this sequence number or exact name."""
    def volumes_of(self, server_id: str) -> list[Volume]: ...
    def list_volumes(self, project_id: str | None) -> list[Volume]: ...
    def snapshot_in_use(self, snapshot_id: str) -> bool:
        """Whether a live volume was made from the snapshot."""

    def add_snapshot(self, snapshot: Snapshot) -> None: ...
    def save_snapshot(self, snapshot: Snapshot) -> None: ...
    def get_snapshot(self, snapshot_id: str) -> Snapshot | None: ...
    def list_snapshots(self, project_id: str | None) -> list[Snapshot]: ...


class NonceRepository(Protocol):
    """Nonces of signed requests already seen (every process of the service shares them)."""
    def seen(self, nonce: str) -> bool: ...
    def add(self, nonce: str, at: datetime) -> None:
        """Duplicate (at commit or before) when another request added it meanwhile."""
    def forget_before(self, cutoff: datetime) -> None: ...


class BucketGrantRepository(Protocol):
    def add(self, grant: BucketGrant) -> None: ...
    def remove(self, bucket: str, project_id: str) -> bool:
        """Whether there was such a grant."""
    def list(self, project_id: str | None = None, bucket: str | None = None) -> builtins.list[BucketGrant]: ...
    def is_granted(self, bucket: str, project_id: str) -> bool: ...


class BucketObjects(Protocol):
    """Objects in the buckets of the object storage (import sources, export targets)."""

    def store(self, bucket: str) -> BlobStore:
        """The bucket as a blob store whose keys are object names; it creates no bucket."""


@dataclass
class Upload:
    """Data on its way into a store for an image, owned by one process (see core/liveness.py)."""
    image_id: str
    status: str          # the image status the upload holds it in (saving, uploading)
    store: str
    key: str
    worker: str
    started_at: datetime
    heartbeat_at: datetime


class UploadRepository(Protocol):
    def begin(self, upload: Upload) -> None:
        """Record an upload (replacing a finished or abandoned record of the same image)."""
    def end(self, image_id: str, worker: str) -> None:
        """Forget the upload if this worker still owns it."""
    def list(self) -> builtins.list[Upload]: ...
    def get(self, image_id: str) -> Upload | None: ...
    def heartbeat(self, worker: str, now: datetime) -> None: ...
    def take_over(self, upload: Upload, worker: str, now: datetime) -> bool:
        """Become the owner if the record is unchanged since it was read; whether we did."""


@dataclass(frozen=True)
class DataToReap:
    """Stored data no image references any more, to delete (core/services/reaper.py)."""
    id: int
    store: str
    key: str
    partial: bool            # abort the key's unfinished writes too
    image_id: str | None     # whose data it was
    attempts: int


class ReapRepository(Protocol):
    def add(self, store: str, key: str, partial: bool, image_id: str | None, now: datetime) -> None: ...
    def claim(self, worker: str, now: datetime, lease_until: datetime, limit: int) -> builtins.list[DataToReap]:
        """Records due by now, leased to worker until lease_until (others skip them: rows
        another transaction is claiming are skipped, not waited for)."""
    def done(self, record_id: int) -> None: ...
    def postpone(self, record_id: int, until: datetime, attempts: int) -> None: ...
    def hasten(self, stores: Iterable[str], now: datetime) -> None:
        """Make the records of these stores due now (their backend answers again)."""
    def claimants(self) -> builtins.set[str]:
        """The processes holding claims now."""
    def release(self, workers: Iterable[str], now: datetime) -> None:
        """The claims of these processes (known dead) end now."""
    def next_due(self) -> datetime | None: ...
    def count(self) -> int: ...


class UnitOfWork(Protocol):
    """One transaction over the repositories the core uses; rolled back unless committed.
    The repositories are there once it is entered."""
    images: ImageRepository
    jobs: JobRepository
    inventory: InventoryRepository
    uploads: UploadRepository
    metadefs: MetadefRepository
    nonces: NonceRepository
    buckets: BucketGrantRepository
    reaps: ReapRepository
    audit: AuditRepository

    def __enter__(self) -> Self: ...
    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                 tb: TracebackType | None) -> None: ...
    def commit(self) -> None: ...


class UnitOfWorkFactory(Protocol):
    def __call__(self, write: bool = False) -> UnitOfWork: ...


class DiskDriver(Protocol):
    """Real disk files for volumes and snapshots (qcow2 on a local file system)."""

    def path(self, volume_id: str) -> str: ...
    def create_from_image(self, volume_id: str, image_path: str, image_format: str, size_bytes: int) -> None:
        """A copy-on-write overlay on the image's data: instant whatever the image's size."""
    def create_empty(self, volume_id: str, size_bytes: int) -> None: ...
    def create_from_snapshot(self, volume_id: str, snapshot_id: str, size_bytes: int) -> None: ...
    def snapshot(self, volume_id: str, snapshot_id: str) -> None:
        """A point-in-time copy of a disk nobody writes to right now."""
    def adopt_snapshot(self, snapshot_id: str, copy_path: str) -> None:
        """Keep a copy made elsewhere (a live backup) as a snapshot."""
    def export(self, volume_id: str, target: str) -> None:
        """A standalone qcow2 of the disk's content (backing chain flattened, sparse)."""
    def resize(self, volume_id: str, size_bytes: int) -> None: ...
    def grow_file(self, path: str, size_bytes: int) -> None:
        """Grow a standalone qcow2 copy (a job's scratch file)."""
    def compact_file(self, source: str, target: str) -> None:
        """Rewrite a standalone qcow2 copy leaving zeroes unallocated."""
    def convert_file(self, source: str, source_format: str, target: str, target_format: str) -> None:
        """Write source (already inspected as source_format) as a target_format file."""
    def virtual_size(self, volume_id: str) -> int: ...
    def delete(self, volume_id: str) -> None: ...
    def delete_snapshot(self, snapshot_id: str) -> None: ...
    def snapshot_in_use(self, snapshot_id: str) -> bool: ...
    def work_dir(self, job_id: str) -> str:
        """A scratch directory for one job; removed with discard_work."""
    def discard_work(self, job_id: str) -> None: ...
    def discard_all_work(self) -> None:
        """Every job's scratch directory (after a restart, no job is running)."""


class Hypervisor(Protocol):
    """Running servers as real processes."""

    def start(self, server_id: str, disks: list[tuple[str, str]], memory_mb: int) -> None:
        """disks: (device, disk file path), system disk first."""
    def stop(self, server_id: str, grace_seconds: float = 5.0) -> None: ...
    def reboot(self, server_id: str) -> None: ...
    def is_running(self, server_id: str) -> bool: ...
    def running(self) -> list[str]:
        """Servers whose processes are alive (found again after a restart)."""
    def backup_disk(self, server_id: str, device: str, target: str) -> None:
        """A live, crash-consistent copy of one attached disk into a new qcow2 file."""


@dataclass
class CacheEntry:
    """One complete cached copy of an image's data on this node."""
    image_id: str
    fingerprint: str            # the image's hash when the copy was made
    size: int
    hits: int
    last_accessed: float        # seconds since the epoch
    last_modified: float


class CachedData(Protocol):
    size: int

    def read(self, start: int = 0, end: int | None = None) -> Iterator[bytes]:
        """Bytes [start, end) of the entry, in chunks."""


class ImageCache(Protocol):
    """Node-local copies of image data, keyed by image id and fingerprint.

    Holds at most max_bytes, evicting the least recently used entries; an entry only
    becomes visible once complete. The queue lists images waiting to be cached."""
    max_bytes: int

    def open(self, image_id: str, fingerprint: str) -> CachedData | None:
        """The complete entry holding exactly these bytes, opened and counted as a hit."""
    def writer(self, image_id: str, fingerprint: str) -> BlobWriter | None:
        """A writer for a new entry; None when it is cached or being written already."""
    def entries(self) -> list[CacheEntry]: ...
    def delete(self, image_id: str, fingerprint: str | None = None) -> bool:
        """Drop the image's entries (only the one of that fingerprint if given); whether any went."""
    def clear(self) -> int: ...
    def queue(self, image_id: str) -> bool:
        """Add to the queue; False when already queued."""
    def queued(self) -> list[str]:
        """Queued image ids, oldest first."""
    def dequeue(self, image_id: str) -> bool: ...
    def clear_queue(self) -> int: ...
    def cleanup_partial(self) -> int:
        """Remove leftovers of entry writes that nobody is doing any more."""


class MetadefRepository(Protocol):
    """The metadata definitions catalog. Children are keyed by their namespace's id.

    The page_* lists are sorted, filtered and paged in the store as the query says; a marker
    (an item's name) that is not among the matches is NotFound. The list_* ones give all of
    a namespace's content, oldest first."""

    def get_namespace(self, name: str, for_update: bool = False) -> Namespace | None: ...
    def page_namespaces(self, query: NamespaceQuery) -> Page[Namespace]: ...
    def add_namespace(self, namespace: Namespace) -> None: ...
    def save_namespace(self, namespace: Namespace) -> None: ...
    def delete_namespace(self, namespace_id: str) -> None:
        """The namespace and everything in it."""

    def list_objects(self, namespace_id: str) -> list[MetadefObject]: ...
    def page_objects(self, namespace_id: str, query: CatalogueQuery) -> Page[MetadefObject]: ...
    def get_object(self, namespace_id: str, name: str) -> MetadefObject | None: ...
    def add_object(self, obj: MetadefObject) -> None: ...
    def save_object(self, obj: MetadefObject) -> None: ...
    def delete_object(self, object_id: str) -> None: ...
    def delete_objects(self, namespace_id: str) -> None: ...

    def list_properties(self, namespace_id: str) -> list[MetadefProperty]: ...
    def get_property(self, namespace_id: str, name: str) -> MetadefProperty | None: ...
    def add_property(self, prop: MetadefProperty) -> None: ...
    def save_property(self, prop: MetadefProperty) -> None: ...
    def delete_property(self, property_id: str) -> None: ...
    def delete_properties(self, namespace_id: str) -> None: ...

    def list_tags(self, namespace_id: str) -> list[MetadefTag]: ...
    def page_tags(self, namespace_id: str, query: CatalogueQuery) -> Page[MetadefTag]: ...
    def get_tag(self, namespace_id: str, name: str) -> MetadefTag | None: ...
    def add_tag(self, tag: MetadefTag) -> None: ...
    def save_tag(self, tag: MetadefTag) -> None: ...
    def delete_tag(self, tag_id: str) -> None: ...
    def delete_tags(self, namespace_id: str) -> None: ...

    def list_resource_types(self) -> list[ResourceType]: ...
    def get_resource_type(self, name: str) -> ResourceType | None: ...
    def add_resource_type(self, resource_type: ResourceType) -> None: ...
    def list_associations(self, namespace_id: str) -> list[Association]: ...
    def get_association(self, namespace_id: str, resource_type: str) -> Association | None: ...
    def add_association(self, association: Association) -> None: ...
    def delete_association(self, namespace_id: str, resource_type: str) -> None: ...


class Identity(Protocol):
    """Who is calling. Faces resolve their callers through this port only: a Keystone
    token, a user's password, or an access key whose secret signs the request."""

    async def authenticate(self, auth: dict, client: str | None = None) -> Token:
        """Issue a token for a Keystone v3 `auth` body (password or token method); client is
        the caller's address, which failed logins are braked by (TooManyRequests). Awaited on
        the event loop: a password check waits its turn without holding a thread, and is
        refused (TooManyRequests) when too many are waiting."""
    def validate(self, token_id: str) -> Token:
        """The live token of that id (scoped or not); Unauthenticated otherwise."""
    def subject_token(self, auth_token_id: str, subject_token_id: str) -> Token:
        """The token another token asks about: only its own user, admins and services may
        (Forbidden otherwise); NotFound when it is not a live token."""
    def revoke(self, token_id: str, by: Token | None = None) -> None:
        """by: the revoker's token, for the audit trail."""
    def caller(self, token_id: str) -> Caller:
        """The caller behind a project-scoped token; Unauthenticated otherwise."""
    def cached_caller(self, token_id: str) -> Caller | None:
        """caller() answered from memory (nothing that waits: safe on an event loop), or None
        when the token has to be looked up. The built-in identity remembers a validated token
        for at most 30 s and only until a user, access key or token is revoked through any
        process; an external Keystone's tokens are remembered 30 s."""
    async def caller_for_password(self, user_name: str, password: str, client: str | None = None) -> Caller:
        """The caller of a user name and password, in the user's default project (braked and
        bounded as authenticate's)."""
    def access_key(self, access_key: str) -> AccessKeyGrant:
        """The key's secret and caller, for a request signature check; Unauthenticated when
        the key is unknown or its user cannot act."""
    def caller_in_project(self, caller: Caller, project: str) -> Caller:
        """The same user acting in another project (id or name) it holds a role in, with its
        roles there and that project's region; Forbidden otherwise."""
    def list_projects(self) -> list[Project]: ...


class IdentityAdmin(Protocol):
    """The operator's side of the built-in identity: projects, users, their roles, access keys
    and quotas. The core's administration use cases (admins only) call it; users and projects
    are named by name or id."""

    def list_projects(self) -> list[Project]: ...
    def create_project(self, name: str, region: str | None = None) -> Project: ...
    def set_quota(self, project: str, resource: str, limit: int) -> None: ...
    def find_project(self, ref: str) -> Project | None: ...
    def list_users(self) -> list[tuple[User, list[tuple[str, str]]]]:
        """Every user with their (project id, role) grants."""
    def create_user(self, name: str, password: str, project: str, role: str) -> User: ...
    def grant_role(self, user_name: str, project: str, role: str) -> tuple[User, Project]: ...
    def revoke_role(self, user_name: str, project: str, role: str) -> tuple[User, Project]: ...
    def set_user_enabled(self, user_name: str, enabled: bool) -> tuple[User, int]: ...
    def delete_user(self, user_name: str) -> tuple[User, int, int]: ...
    def create_access_key(self, user_name: str) -> AccessKey:
        """The new key with its secret: the only time the secret is given out."""
    def list_access_keys(self, user_name: str | None = None) -> list[tuple[AccessKey, User]]: ...
    def set_access_key_enabled(self, access_key: str, enabled: bool) -> AccessKey: ...
    def delete_access_key(self, access_key: str) -> AccessKey: ...
