"""The only place that picks concrete adapters from settings."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import timedelta

from sqlalchemy import Engine

from vmimage.adapters.blob.http import HttpBlobStore
from vmimage.adapters.blob.local import LocalFileBlobStore
from vmimage.adapters.cache.local import LocalImageCache
from vmimage.adapters.disks.qcow2 import Qcow2DiskDriver
from vmimage.adapters.hypervisor.qemu import QemuHypervisor
from vmimage.adapters.web.fetch import HttpFetcher
from vmimage.adapters.db.engine import make_engine, upgrade_schema
from vmimage.adapters.db.unit_of_work import SqlUnitOfWorkFactory
from vmimage.core import metadef_catalogue
from vmimage.core.ports import Identity
from vmimage.core.quotas import Limits
from vmimage.core.url_filter import UrlPolicy
from vmimage.core.services.cache import Prefetcher
from vmimage.core.services.deps import Deps
from vmimage.core.services.job_engine import EngineSettings, JobEngine
from vmimage.core.services.members import BATCH_KIND as MEMBER_BATCH
from vmimage.core.services.members import MemberBatch
from vmimage.core.services.metadefs import seed_catalogue
from vmimage.core.services.imports import KIND as IMAGE_IMPORT
from vmimage.core.services.import_job import ImportHandler
from vmimage.core.services.intake import reset_lost_uploads
from vmimage.core.services.location_import import KIND as LOCATION_IMPORT
from vmimage.core.services.location_import import LocationImportHandler
from vmimage.core.services.server_images import KIND as IMAGE_FROM_DISKS
from vmimage.core.services.tasks import LEGACY_IMPORT_KIND as LEGACY_IMPORT
from vmimage.core.services.server_images import ImageFromDisks
from vmimage.identity.external import ExternalKeystone
from vmimage.identity.service import IdentityService
from vmimage.imaging.inspector import OsloContentInspector
from vmimage.settings import Settings


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
    prefetcher: Prefetcher | None = None     # fills the image cache; None when caching is off

    def close(self) -> None:
        if self.prefetcher is not None:
            self.prefetcher.stop()
        self.jobs.stop()
        self.engine.dispose()


def build(settings: Settings, migrate: bool = True) -> Container:
    settings.data_dir.mkdir(parents=True, exist_ok=True)
    engine = make_engine(settings.db_url)
    if migrate:
        upgrade_schema(engine)
    uow = SqlUnitOfWorkFactory(engine)
    fetcher = HttpFetcher(UrlPolicy(settings.web_download_allow))
    stores = {name: LocalFileBlobStore(name, root) for name, root in settings.file_stores()}
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
                multi_store=settings.multi_store, fetcher=fetcher,
                import_to_all_stores=settings.import_default_stores != "default",
                import_convert_to=settings.import_convert_to or None,
                import_lock_stale=timedelta(seconds=settings.import_lock_stale_seconds))
    jobs = JobEngine(deps, {IMAGE_FROM_DISKS: ImageFromDisks(), IMAGE_IMPORT: ImportHandler(),
                            LEGACY_IMPORT: ImportHandler(), LOCATION_IMPORT: LocationImportHandler(),
                            MEMBER_BATCH: MemberBatch()},
                     EngineSettings(workers=settings.job_workers))
    deps.submit_job = jobs.wake
    prefetcher = None
    if settings.cache_enabled:
        deps.cache = LocalImageCache(settings.cache_dir, settings.cache_max_bytes)
        prefetcher = Prefetcher(deps)
        deps.wake_prefetcher = prefetcher.wake
    if migrate:  # seed data goes with the schema: the catalogue's namespaces not there yet
        seed_catalogue(deps, metadef_catalogue.resource_types(), metadef_catalogue.namespaces())
    identity = IdentityService(uow, timedelta(seconds=settings.token_ttl))
    auth: Identity = identity
    if settings.keystone_url:
        auth = ExternalKeystone(settings.keystone_url, settings.keystone_user,
                                settings.keystone_password, settings.keystone_project, local=identity)
    return Container(settings, engine, deps, identity, auth, jobs, prefetcher=prefetcher)


def recover_after_crash(container: Container) -> None:
    """A single embedded process (SQLite) owns all uploads: what was in flight when it died is gone."""
    if container.engine.dialect.name == "sqlite":
        reset_lost_uploads(container.deps)
