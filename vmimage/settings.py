"""Settings from the environment (and the serve command's flags)."""

from __future__ import annotations

import os
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


@dataclass
class Settings:
    data_dir: Path = field(default_factory=lambda: Path(os.environ.get("VMIMAGE_DATA_DIR", "data")))
    host: str = field(default_factory=lambda: os.environ.get("VMIMAGE_HOST", "127.0.0.1"))
    port: int = field(default_factory=lambda: _int("VMIMAGE_PORT", 9292))
    database_url: str | None = field(default_factory=lambda: os.environ.get("VMIMAGE_DATABASE_URL"))
    public_url: str | None = field(default_factory=lambda: os.environ.get("VMIMAGE_PUBLIC_URL"))
    region: str = field(default_factory=lambda: os.environ.get("VMIMAGE_REGION", "RegionOne"))
    format_enforcement: bool = field(default_factory=lambda: _bool("VMIMAGE_FORMAT_ENFORCEMENT", True))
    max_image_size: int = field(default_factory=lambda: _int("VMIMAGE_MAX_IMAGE_SIZE", 1 << 40))
    quota_images: int = field(default_factory=lambda: _int("VMIMAGE_QUOTA_IMAGES", -1))
    quota_bytes: int = field(default_factory=lambda: _int("VMIMAGE_QUOTA_BYTES", -1))
    token_ttl: int = field(default_factory=lambda: _int("VMIMAGE_TOKEN_TTL", 3600))
    admin_password: str | None = field(default_factory=lambda: os.environ.get("VMIMAGE_ADMIN_PASSWORD"))
    # Trust an external Keystone instead of the built-in identity.
    keystone_url: str | None = field(default_factory=lambda: os.environ.get("VMIMAGE_KEYSTONE_URL"))
    keystone_user: str = field(default_factory=lambda: os.environ.get("VMIMAGE_KEYSTONE_USER", "glance"))
    keystone_password: str = field(default_factory=lambda: os.environ.get("VMIMAGE_KEYSTONE_PASSWORD", ""))
    keystone_project: str = field(default_factory=lambda: os.environ.get("VMIMAGE_KEYSTONE_PROJECT", "service"))
    workers: int = field(default_factory=lambda: _int("VMIMAGE_WORKERS", 1))
    job_workers: int = field(default_factory=lambda: _int("VMIMAGE_JOB_WORKERS", 2))
    # Host directories whose files the Aries face may register as images (source_path);
    # none by default: registration is off.
    import_roots: list[str] = field(default_factory=lambda: _list("VMIMAGE_IMPORT_ROOTS"))

    @property
    def db_url(self) -> str:
        return self.database_url or f"sqlite:///{self.data_dir.resolve() / 'vmimage.db'}"

    @property
    def base_url(self) -> str:
        return (self.public_url or f"http://{self.host}:{self.port}").rstrip("/")

    @property
    def store_dir(self) -> Path:
        return self.data_dir / "images"
