"""Settings from the environment (and the serve command's flags)."""

from __future__ import annotations

import os
import re
from dataclasses import dataclass, field
from pathlib import Path


def _bool(name: str, default: bool) -> bool:
    raw = os.environ.get(name)
    if raw is None:
        return default
    return raw.strip().lower() in ("1", "true", "yes", "on")


def _list(name: str) -> list[str]:
    """A comma-separated list; blanks dropped."""
    return [part.strip() for part in os.environ.get(name, "").split(",") if part.strip()]


def _int(name: str, default: int) -> int:
    raw = os.environ.get(name)
    return int(raw) if raw not in (None, "") else default


def _float(name: str, default: float) -> float:
    raw = os.environ.get(name)
    return float(raw) if raw not in (None, "") else default


@dataclass
class Settings:
    data_dir: Path = field(default_factory=lambda: Path(os.environ.get("VMIMAGE_DATA_DIR", "data")))
    host: str = field(default_factory=lambda: os.environ.get("VMIMAGE_HOST", "127.0.0.1"))
    port: int = field(default_factory=lambda: _int("VMIMAGE_PORT", 9292))
    database_url: str | None = field(default_factory=lambda: os.environ.get("VMIMAGE_DATABASE_URL"))
    public_url: str | None = field(default_factory=lambda: os.environ.get("VMIMAGE_PUBLIC_URL"))
    region: str = field(default_factory=lambda: os.environ.get("VMIMAGE_REGION", "RegionOne"))
    # The regions this service serves, the default first (unset: the one VMIMAGE_REGION).
    regions_given: list[str] = field(default_factory=lambda: _list("VMIMAGE_REGIONS"))
    format_enforcement: bool = field(default_factory=lambda: _bool("VMIMAGE_FORMAT_ENFORCEMENT", True))
    max_image_size: int = field(default_factory=lambda: _int("VMIMAGE_MAX_IMAGE_SIZE", 1 << 40))
    quota_images: int = field(default_factory=lambda: _int("VMIMAGE_QUOTA_IMAGES", -1))
    quota_bytes: int = field(default_factory=lambda: _int("VMIMAGE_QUOTA_BYTES", -1))
    token_ttl: int = field(default_factory=lambda: _int("VMIMAGE_TOKEN_TTL", 3600))
    admin_password: str | None = field(default_factory=lambda: os.environ.get("VMIMAGE_ADMIN_PASSWORD"))
    # Password checks (scrypt, 16 MiB each) running at once per process; more wait in line
    # for up to password_check_wait_seconds, then 429.
    password_checks: int = field(default_factory=lambda: _int("VMIMAGE_PASSWORD_CHECKS", 2))
    password_check_wait_seconds: float = field(
        default_factory=lambda: _float("VMIMAGE_PASSWORD_CHECK_WAIT_SECONDS", 5.0))
    # The key access-key secrets are encrypted with (any string); unset: a key file in the data dir.
    secret_key: str | None = field(default_factory=lambda: os.environ.get("VMIMAGE_SECRET_KEY") or None)
    # Trust an external Keystone instead of the built-in identity.
    keystone_url: str | None = field(default_factory=lambda: os.environ.get("VMIMAGE_KEYSTONE_URL"))
    keystone_user: str = field(default_factory=lambda: os.environ.get("VMIMAGE_KEYSTONE_USER", "glance"))
    keystone_password: str = field(default_factory=lambda: os.environ.get("VMIMAGE_KEYSTONE_PASSWORD", ""))
    keystone_project: str = field(default_factory=lambda: os.environ.get("VMIMAGE_KEYSTONE_PROJECT", "service"))
    workers: int = field(default_factory=lambda: _int("VMIMAGE_WORKERS", 1))
    job_workers: int = field(default_factory=lambda: _int("VMIMAGE_JOB_WORKERS", 2))
    # Image insight: every image that becomes active is read (core/insight.py), by this many
    # workers of the job engine's side lane.
    inspect_images: bool = field(default_factory=lambda: _bool("VMIMAGE_INSPECT_IMAGES", True))
    inspect_workers: int = field(default_factory=lambda: _int("VMIMAGE_INSPECT_WORKERS", 1))
    inspect_duty: float = field(default_factory=lambda: float(os.environ.get("VMIMAGE_INSPECT_DUTY", "0.25")))
    # Per project: jobs running at once over every process sharing the database, and jobs
    # waiting (a submit beyond: 429); -1: no limit.
    jobs_per_project: int = field(default_factory=lambda: _int("VMIMAGE_JOBS_PER_PROJECT", 4))
    queued_jobs_per_project: int = field(default_factory=lambda: _int("VMIMAGE_QUEUED_JOBS_PER_PROJECT", 100))
    # Host directories whose files the Aries face may register as images (source_path), as
    # set; None (unset): the one default, import_roots below. Set empty: registration is off.
    import_roots_given: list[str] | None = field(
        default_factory=lambda: _list("VMIMAGE_IMPORT_ROOTS") if "VMIMAGE_IMPORT_ROOTS" in os.environ else None)
    # Users (names or uids) besides the service's own whose files under the roots may be registered.
    import_owners: list[str] = field(default_factory=lambda: _list("VMIMAGE_IMPORT_OWNERS"))
    # Named stores, "name=file:/path,name=s3://BUCKET[/PREFIX],..."; the first is the default. Unset: one file store
    # in the data dir (and Glance's single-store answers).
    stores_spec: str = field(default_factory=lambda: os.environ.get("VMIMAGE_STORES", "").strip())
    # Glance's per-store weight, "name=INT,...": a store unnamed here weighs 0. An image's
    # locations (and `stores`) are listed heaviest first, and a download reads the heaviest copy.
    store_weights_spec: str = field(default_factory=lambda: os.environ.get("VMIMAGE_STORE_WEIGHTS", "").strip())
    # The read-only store that holds locations at http(s) URLs; empty turns it off.
    http_store: str = field(default_factory=lambda: os.environ.get("VMIMAGE_HTTP_STORE", "web").strip())
    # How file stores write blob data: "cached" (through the page cache, the writeback kept behind
    # the writer: a first download reads memory) or "direct" (O_DIRECT: less CPU per byte written).
    file_writes: str = field(default_factory=lambda: os.environ.get("VMIMAGE_FILE_WRITES", "cached").strip().lower())
    # Of the image data a process wrote through the page cache and has not read since, how many
    # MiB stay cached for a first download; past it the oldest is dropped as new data comes (0: no bound).
    file_cache_mib: int = field(default_factory=lambda: _int("VMIMAGE_FILE_CACHE_MIB", 2048))
    # Hosts or networks web-download may reach although they are loopback/private/link-local.
    web_download_allow: list[str] = field(default_factory=lambda: _list("VMIMAGE_WEB_DOWNLOAD_ALLOW"))
    # Audit events are kept this many days, then pruned when the service starts (-1: for ever).
    audit_days: int = field(default_factory=lambda: _int("VMIMAGE_AUDIT_DAYS", 90))
    # Client addresses or networks (CIDR) GET /metrics answers without an admin's token.
    metrics_allow: list[str] = field(default_factory=lambda: _list("VMIMAGE_METRICS_ALLOW")
                                     if "VMIMAGE_METRICS_ALLOW" in os.environ else ["127.0.0.1", "::1"])
    # "text" (warnings and errors as plain lines) or "json" (one object a line, one a request).
    log_format: str = field(default_factory=lambda: os.environ.get("VMIMAGE_LOG_FORMAT", "text").strip().lower())
    # SIGTERM: how long requests in flight (and running jobs) may take to finish.
    shutdown_grace_seconds: int = field(default_factory=lambda: _int("VMIMAGE_SHUTDOWN_GRACE_SECONDS", 30))
    # Where an import that names no store goes: "all" writable stores or the "default" one.
    import_default_stores: str = field(
        default_factory=lambda: os.environ.get("VMIMAGE_IMPORT_DEFAULT_STORES", "all").strip().lower())
    # Convert imported data to this disk format with qemu-img (empty: keep it as it came).
    import_convert_to: str = field(default_factory=lambda: os.environ.get("VMIMAGE_IMPORT_CONVERT_TO", "").strip())
    # An import lock whose task made no progress for this long may be taken over.
    import_lock_stale_seconds: int = field(default_factory=lambda: _int("VMIMAGE_IMPORT_LOCK_STALE_SECONDS", 3600))
    # Uploads in flight are heartbeated this often; a process silent for upload_stale_seconds
    # (or, on this host, with its pid gone) has its uploads reset by a surviving process.
    upload_heartbeat_seconds: float = field(default_factory=lambda: float(_int("VMIMAGE_UPLOAD_HEARTBEAT_SECONDS", 10)))
    upload_stale_seconds: int = field(default_factory=lambda: _int("VMIMAGE_UPLOAD_STALE_SECONDS", 40))
    # This node's image cache (Glance's cache API, downloads served from local copies).
    cache_enabled: bool = field(default_factory=lambda: _bool("VMIMAGE_CACHE_ENABLED", True))
    cache_dir_override: str = field(default_factory=lambda: os.environ.get("VMIMAGE_CACHE_DIR", "").strip())
    cache_max_bytes: int = field(default_factory=lambda: _int("VMIMAGE_CACHE_MAX_BYTES", 10 << 30))
    # The S3 server of the s3:// stores (and of the buckets granted to projects).
    s3_endpoint: str | None = field(default_factory=lambda: os.environ.get("VMIMAGE_S3_ENDPOINT") or None)
    s3_access_key: str | None = field(default_factory=lambda: os.environ.get("VMIMAGE_S3_ACCESS_KEY") or None)
    s3_secret_key: str | None = field(default_factory=lambda: os.environ.get("VMIMAGE_S3_SECRET_KEY") or None,
                                      repr=False)
    s3_region: str = field(default_factory=lambda: os.environ.get("VMIMAGE_S3_REGION", "us-east-1") or "us-east-1")
    # Byte cap of every request body but image data (413 beyond).
    max_json_bytes: int = field(default_factory=lambda: _int("VMIMAGE_MAX_JSON_BYTES", 1 << 20))
    # A request body (image data included) that sends nothing for this long fails (0: never).
    upload_idle_seconds: int = field(default_factory=lambda: _int("VMIMAGE_UPLOAD_IDLE_SECONDS", 60))
    # Concurrent uploads and stages per project in one process (429 beyond; -1: no limit).
    uploads_per_project: int = field(default_factory=lambda: _int("VMIMAGE_UPLOADS_PER_PROJECT", 8))
    # Each backend (an S3 store, the granted buckets' S3 server, the web, qemu-img) works within
    # bounds of its own (core/backends.py): calls at once; a connect or read of S3 or the web that
    # waits this long fails the request (503); outages in a row that short-circuit the backend, and
    # for how long (503 at once with Retry-After, then one probe).
    backend_slots: int = field(default_factory=lambda: _int("VMIMAGE_BACKEND_SLOTS", 16))
    backend_stall_seconds: float = field(default_factory=lambda: _float("VMIMAGE_BACKEND_STALL_SECONDS", 15))
    backend_trip_after: int = field(default_factory=lambda: _int("VMIMAGE_BACKEND_TRIP_AFTER", 5))
    backend_retry_seconds: float = field(default_factory=lambda: _float("VMIMAGE_BACKEND_RETRY_SECONDS", 30))
    # qemu-img processes at once (each may take a core and up to 4 GiB of address space).
    qemu_img_slots: int = field(default_factory=lambda: _int("VMIMAGE_QEMU_IMG_SLOTS", 4))
    # A request head not complete this long after its first byte (or the connection's start)
    # closes the connection (0: never).
    header_timeout_seconds: float = field(default_factory=lambda: _float("VMIMAGE_HEADER_TIMEOUT_SECONDS", 10))
    # Open connections per serving process (-1: no bound); a newcomer beyond it displaces the
    # longest-idle keep-alive connection, else the oldest unfinished head, else gets a 503.
    max_connections: int = field(default_factory=lambda: _int("VMIMAGE_MAX_CONNECTIONS", 1000))
    # Idle keep-alive connections per serving process; beyond, the longest-idle one is closed.
    max_idle_connections: int = field(default_factory=lambda: _int("VMIMAGE_MAX_IDLE_CONNECTIONS", 100))

    def import_owner_uids(self) -> list[int]:
        """VMIMAGE_IMPORT_OWNERS as uids; an unknown user name is a configuration error."""
        import pwd
        uids = []
        for owner in self.import_owners:
            if owner.isdigit():
                uids.append(int(owner))
                continue
            try:
                uids.append(pwd.getpwnam(owner).pw_uid)
            except KeyError:
                raise ValueError(f"VMIMAGE_IMPORT_OWNERS: no user named '{owner}'") from None
        return uids

    @property
    def default_import_root(self) -> Path:
        """Where a new user drops a file for the Aries face to register (made 0700 at first start)."""
        return (self.data_dir / "import").resolve()

    @property
    def import_roots(self) -> list[str]:
        return self.import_roots_given if self.import_roots_given is not None else [str(self.default_import_root)]

    @property
    def db_url(self) -> str:
        return self.database_url or f"sqlite:///{self.data_dir.resolve() / 'vmimage.db'}"

    @property
    def base_url(self) -> str:
        return (self.public_url or f"http://{self.host}:{self.port}").rstrip("/")

    @property
    def store_dir(self) -> Path:
        return self.data_dir / "images"

    @property
    def cache_dir(self) -> Path:
        return Path(self.cache_dir_override) if self.cache_dir_override else self.data_dir / "cache"

    @property
    def multi_store(self) -> bool:
        return bool(self.stores_spec)

    @property
    def regions(self) -> list[str]:
        """Every region, the default first."""
        names = self.regions_given or [self.region]
        for name in names:
            if not re.fullmatch(r"[A-Za-z0-9][A-Za-z0-9._-]{0,63}", name):
                raise ValueError(f"VMIMAGE_REGIONS: '{name}' is not a region name (letters, digits, '.', '_', '-')")
        if len(set(names)) != len(names):
            raise ValueError("VMIMAGE_REGIONS: a region is named twice")
        return names

    def store_specs(self) -> list[tuple[str, str, str]]:
        """(name, kind, where) of each writable store, the default first: kind "file" with a
        directory, or "s3" with "BUCKET[/PREFIX]"."""
        return [(name, kind, where) for name, kind, where, _ in self.regional_store_specs()]

    def store_regions(self) -> dict[str, str]:
        """Store name -> the region it serves."""
        return {name: region for name, _, _, region in self.regional_store_specs()}

    def regional_store_specs(self) -> list[tuple[str, str, str, str]]:
        """(name, kind, where, region) of each writable store, the default region's default
        store first. A store named "name@REGION=..." serves REGION, others the default
        region; a region given no store gets a file store "file-REGION" in the data dir."""
        regions = self.regions
        if not self.stores_spec:
            found = [("file", "file", str(self.store_dir), regions[0])]
        else:
            found = self._named_store_specs(regions)
        served = {region for *_, region in found}
        for region in regions:
            if region not in served:
                found.append((f"file-{region}", "file", str(self.data_dir / f"images-{region}"), region))
        return found

    def _named_store_specs(self, regions: list[str]) -> list[tuple[str, str, str, str]]:
        found: list[tuple[str, str, str, str]] = []
        for item in self.stores_spec.split(","):
            named, sep, spec = item.strip().partition("=")
            name, at, region = named.partition("@")
            if at and region not in regions:
                raise ValueError(f"VMIMAGE_STORES: '{item}' names region '{region}', not one of VMIMAGE_REGIONS")
            region = region or regions[0]
            kind, colon, where = spec.partition(":")
            if kind == "s3":
                where = where[2:] if where.startswith("//") else ""
                if not where.split("/", 1)[0]:
                    raise ValueError(f"VMIMAGE_STORES: '{item}' is not name=s3://BUCKET[/PREFIX]")
            elif not sep or not name or kind != "file" or not colon or not where:
                raise ValueError(f"VMIMAGE_STORES: '{item}' is not name=file:/path or name=s3://BUCKET[/PREFIX]")
            if not sep or not name:
                raise ValueError(f"VMIMAGE_STORES: '{item}' has no store name")
            if any(name == n for n, *_ in found) or name == self.http_store:
                raise ValueError(f"VMIMAGE_STORES: store '{name}' named twice")
            found.append((name, kind, where, region))
        # The default region's stores first: the first of them is the default store.
        return sorted(found, key=lambda spec: spec[3] != regions[0])

    def store_weights(self) -> dict[str, int]:
        """VMIMAGE_STORE_WEIGHTS as {store: weight}; every name must be a configured store."""
        known = {name for name, _, _ in self.store_specs()} | ({self.http_store} if self.http_store else set())
        weights: dict[str, int] = {}
        for item in filter(None, (i.strip() for i in self.store_weights_spec.split(","))):
            name, sep, value = item.partition("=")
            name = name.strip()
            try:
                weight = int(value.strip())
            except ValueError:
                weight = None
            if not sep or weight is None:
                raise ValueError(f"VMIMAGE_STORE_WEIGHTS: '{item}' is not name=INTEGER")
            if name not in known or not self.multi_store:
                raise ValueError(f"VMIMAGE_STORE_WEIGHTS: '{name}' is not a store named in VMIMAGE_STORES")
            if name in weights:
                raise ValueError(f"VMIMAGE_STORE_WEIGHTS: store '{name}' weighed twice")
            weights[name] = weight
        return weights

    def file_stores(self) -> list[tuple[str, Path]]:
        """(name, directory) of each file store."""
        return [(name, Path(where)) for name, kind, where in self.store_specs() if kind == "file"]
