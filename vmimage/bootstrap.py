"""The only place that picks concrete adapters from settings."""

from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import timedelta

from sqlalchemy import Engine

from vmimage.adapters.blob.http import HttpBlobStore
from vmimage.adapters.blob.local import CachedWrites, LocalFileBlobStore
from vmimage.adapters.blob.s3 import S3Buckets, S3BlobStore, S3Connection
from vmimage.adapters.blob.s3_uploads import UploadJanitor, UploadJournal
from vmimage.adapters.cache.local import LocalImageCache
from vmimage.adapters.disks.qcow2 import Qcow2DiskDriver
from vmimage.adapters.hypervisor.qemu import QemuHypervisor
from vmimage.adapters.web.fetch import HttpFetcher
from vmimage.adapters.db.engine import forget_old_versions, make_engine, sqlite_files, startup_lock, upgrade_schema
from vmimage.adapters.private_files import load_or_create_key, prepare_data_dir, tighten, tighten_tree
from vmimage.adapters.db.revocations import revocation_feed
from vmimage.adapters.db.unit_of_work import SqlUnitOfWorkFactory
from vmimage.core import audit, metadef_catalogue
from vmimage.core.backends import Backend, BackendLimits
from vmimage.core.errors import BackendUnavailable
from vmimage.core.jobs import INSPECT_KIND, JobLimits
from vmimage.core.liveness import new_worker_id
from vmimage.core.ports import BlobStore, Identity
from vmimage.core.quotas import Limits
from vmimage.core.upload_slots import UploadSlots
from vmimage.core.url_filter import UrlPolicy
from vmimage.core.services.buckets import EXPORT_KIND as BUCKET_EXPORT
from vmimage.core.services.buckets import IMPORT_KIND as BUCKET_IMPORT
from vmimage.core.services.buckets import BucketExportHandler, BucketImportHandler
from vmimage.core.services.cache import Prefetcher
from vmimage.core.services.deps import Deps
from vmimage.core.services.job_engine import EngineSettings, JobEngine
from vmimage.core.services.reaper import Reaper
from vmimage.core.services.members import BATCH_KIND as MEMBER_BATCH
from vmimage.core.services.insight import InspectHandler
from vmimage.core.services.members import MemberBatch
from vmimage.core.services.metadefs import seed_catalogue
from vmimage.core.services.imports import KIND as IMAGE_IMPORT
from vmimage.core.services.import_job import ImportHandler
from vmimage.core.services.intake import reset_lost_uploads
from vmimage.core.services.location_import import KIND as LOCATION_IMPORT
from vmimage.core.services.location_import import LocationImportHandler
from vmimage.core.services.server_images import KIND as IMAGE_FROM_DISKS
from vmimage.core.services.tasks import LEGACY_IMPORT_KIND as LEGACY_IMPORT
from vmimage.core.services.uploads import UploadWatch, recover_uploads
from vmimage.core.services.server_images import ImageFromDisks
from vmimage.identity.external import ExternalKeystone
from vmimage.identity.passwords import PasswordChecks
from vmimage.identity.secret_box import SecretBox
from vmimage.identity.service import IdentityService
from vmimage.imaging import qemu_img
from vmimage.imaging.insight_reader import ChildGuestReader
from vmimage.imaging.inspector import OsloContentInspector
from vmimage.settings import Settings

log = logging.getLogger("vmimage")

@dataclass
class Container:
    settings: Settings
    engine: Engine
    deps: Deps
    identity: IdentityService     # administration (users, projects, keys) from the CLI
    # The core's Identity port the faces use: the built-in identity, or an external Keystone
    # for callers' tokens.
    auth: Identity
    jobs: JobEngine
    uploads: UploadWatch                     # heartbeats our uploads, recovers dead processes' ones
    prefetcher: Prefetcher | None = None     # fills the image cache; None when caching is off
    # Aborts the S3 multipart uploads failures left behind; None without S3.
    janitor: UploadJanitor | None = None
    # Deletes the stored data the database no longer references (core/services/reaper.py).
    reaper: Reaper | None = None

    def close(self) -> None:
        if self.reaper is not None:
            self.reaper.stop()
        if self.janitor is not None:
            self.janitor.stop()
        if self.prefetcher is not None:
            self.prefetcher.stop()
        self.uploads.stop()
        self.jobs.stop()
        self.identity.close()
        self.engine.dispose()


def build(settings: Settings, migrate: bool = True) -> Container:
    prepare_data_dir(settings.data_dir)
    if settings.import_roots_given is None:
        prepare_data_dir(settings.default_import_root)
    engine = make_engine(settings.db_url)
    if migrate:
        with startup_lock(engine):      # processes starting together migrate one at a time
            upgrade_schema(engine)
    uow = SqlUnitOfWorkFactory(engine)
    limits_of_backends = backend_limits(settings)
    qemu_img.configure(Backend("qemu-img", slots=settings.qemu_img_slots, stall_seconds=None,
                               trip_after=settings.backend_trip_after, retry_seconds=settings.backend_retry_seconds))
    fetcher = HttpFetcher(UrlPolicy(settings.web_download_allow), backend=limits_of_backends.backend("web server"))
    worker_id = new_worker_id()
    janitor = None
    if settings.s3_endpoint or any(kind == "s3" for _, kind, _ in settings.store_specs()):
        janitor = UploadJanitor(UploadJournal(settings.data_dir / "s3-uploads", worker_id),
                                settings.backend_retry_seconds)
    stores = make_stores(settings, janitor)
    default_store = next(iter(stores))
    if settings.http_store:
        stores[settings.http_store] = HttpBlobStore(settings.http_store, fetcher)
    limits = Limits(image_count=settings.quota_images, image_bytes=settings.quota_bytes,
                    max_image_size=settings.max_image_size)
    deps = Deps(uow=uow, stores=stores, default_store=default_store, limits=limits,
                enforce_format_match=settings.format_enforcement, new_inspector=OsloContentInspector,
                disks=Qcow2DiskDriver(settings.data_dir / "disks",
                                      image_roots=[root for _, root in settings.file_stores()]),
                hypervisor=QemuHypervisor(settings.data_dir / "run"), import_roots=list(settings.import_roots),
                import_owners=settings.import_owner_uids(),
                multi_store=settings.multi_store, fetcher=fetcher,
                import_to_all_stores=settings.import_default_stores != "default",
                import_convert_to=settings.import_convert_to or None,
                import_lock_stale=timedelta(seconds=settings.import_lock_stale_seconds),
                upload_slots=UploadSlots(settings.uploads_per_project), worker_id=worker_id,
                job_limits=JobLimits(settings.jobs_per_project, settings.queued_jobs_per_project),
                store_buckets=store_buckets(settings), store_weights=settings.store_weights(),
                regions=tuple(settings.regions), store_regions=settings.store_regions(),
                guest_reader=ChildGuestReader() if settings.inspect_images else None)
    jobs = JobEngine(deps, {IMAGE_FROM_DISKS: ImageFromDisks(), IMAGE_IMPORT: ImportHandler(),
                            LEGACY_IMPORT: ImportHandler(), LOCATION_IMPORT: LocationImportHandler(),
                            BUCKET_IMPORT: BucketImportHandler(), BUCKET_EXPORT: BucketExportHandler(),
                            MEMBER_BATCH: MemberBatch(), INSPECT_KIND: InspectHandler()},
                     EngineSettings(workers=settings.job_workers, side_lane_workers=settings.inspect_workers,
                                    side_lane_duty=settings.inspect_duty))
    deps.submit_job = jobs.wake
    reaper = Reaper(deps, audit_days=settings.audit_days)
    deps.wake_reaper = reaper.wake
    if settings.s3_endpoint:
        deps.buckets = buckets = S3Buckets(s3_connection(settings), limits_of_backends.backend("S3 buckets"), janitor)
        buckets.register()
    prefetcher = None
    if settings.cache_enabled:
        deps.cache = LocalImageCache(settings.cache_dir, settings.cache_max_bytes)
        prefetcher = Prefetcher(deps)
        deps.wake_prefetcher = prefetcher.wake
    if migrate:  # seed data goes with the schema: the catalogue's namespaces not there yet
        with startup_lock(engine):
            seed_catalogue(deps, metadef_catalogue.resource_types(), metadef_catalogue.namespaces())
    identity = IdentityService(uow, timedelta(seconds=settings.token_ttl), _secret_box(settings),
                               PasswordChecks(settings.password_checks, settings.password_check_wait_seconds),
                               revocation_feed(engine))
    if migrate:
        with startup_lock(engine):
            if identity.seal_plaintext_secrets():
                forget_old_versions(engine)    # no plaintext left behind in SQLite's -wal
    deps.identity_admin = identity
    auth: Identity = identity
    if settings.keystone_url:
        auth = ExternalKeystone(settings.keystone_url, settings.keystone_user,
                                settings.keystone_password, settings.keystone_project, local=identity)
    uploads = UploadWatch(deps, settings.upload_heartbeat_seconds, timedelta(seconds=settings.upload_stale_seconds))
    return Container(settings, engine, deps, identity, auth, jobs, uploads, prefetcher=prefetcher, janitor=janitor,
                     reaper=reaper)


def backend_limits(settings: Settings) -> BackendLimits:
    return BackendLimits(slots=settings.backend_slots, stall_seconds=settings.backend_stall_seconds,
                         trip_after=settings.backend_trip_after, retry_seconds=settings.backend_retry_seconds)


def store_buckets(settings: Settings) -> dict[str, list[str]]:
    """The buckets of the s3:// stores, with the stores in each."""
    found: dict[str, list[str]] = {}
    for name, kind, where in settings.store_specs():
        if kind == "s3":
            found.setdefault(where.partition("/")[0], []).append(name)
    return found


def s3_connection(settings: Settings) -> S3Connection:
    return S3Connection(settings.s3_endpoint, settings.s3_access_key, settings.s3_secret_key, settings.s3_region)


def make_stores(settings: Settings, janitor: UploadJanitor | None = None) -> dict[str, BlobStore]:
    """The writable stores, the default first."""
    stores: dict[str, BlobStore] = {}
    if settings.file_cache_mib < 0:
        raise ValueError("VMIMAGE_FILE_CACHE_MIB must be 0 (no bound) or more")
    cached_writes = CachedWrites(settings.file_cache_mib << 20)     # one bound for all of this process's file stores
    for name, kind, where in settings.store_specs():
        if kind == "s3":
            bucket, _, prefix = where.partition("/")
            stores[name] = store = S3BlobStore(name, bucket, prefix, s3_connection(settings),
                                               backend=backend_limits(settings).backend(f"S3 store '{name}'"),
                                               janitor=janitor)
            try:
                store.ensure_bucket()
            except BackendUnavailable as exc:     # tried again at the first write
                log.warning("%s", exc.message)
        else:
            stores[name] = LocalFileBlobStore(name, where, writes=settings.file_writes,
                                                cached_writes=cached_writes)
    return stores


def _secret_box(settings: Settings) -> SecretBox:
    if settings.secret_key:
        return SecretBox.from_passphrase(settings.secret_key)
    return SecretBox(load_or_create_key(settings.data_dir / "secret.key"))


def _tighten(settings: Settings, engine: Engine) -> None:
    """Files an earlier version left readable by others: the database, disks, stores, cache."""
    for path in sqlite_files(engine):
        tighten(path)
    for name in ("admin-password", "clouds.yaml", "secret.key"):
        tighten(settings.data_dir / name)
    for sub in ("disks", "run"):
        tighten_tree(settings.data_dir / sub)
    for _, root in settings.file_stores():
        tighten_tree(root, include_root=root.parent == settings.data_dir)
    tighten_tree(settings.cache_dir, include_root=settings.cache_dir.parent == settings.data_dir)


def recover_after_crash(container: Container) -> None:
    """At start: uploads of processes that are gone are undone, and this node's leftovers go."""
    _tighten(container.settings, container.engine)
    recover_uploads(container.deps, timedelta(seconds=container.settings.upload_stale_seconds))
    audit.prune(container.deps.uow, container.settings.audit_days)
    if container.engine.dialect.name == "sqlite":
        # A single embedded process (SQLite) owns all uploads: what was in flight when it died is gone.
        reset_lost_uploads(container.deps)
        return
    # Other processes may be writing to shared stores: only this host's dead writers' files go.
    for store in container.deps.stores.values():
        if isinstance(store, LocalFileBlobStore):
            store.cleanup_dead_partials()
