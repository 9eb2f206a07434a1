"""The Keystone face's own settings, read from the service's environment when it is mounted."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field

from starlette.requests import Request

from vmimage.faces.contract import env_list, face_context


@dataclass(frozen=True)
class KeystoneSettings:
    # More services the catalog lists, (type, URL): VMIMAGE_CATALOG_EXTRA="TYPE=URL,...", e.g. a
    # second API process as Tempest's `image_remote`. Each gets every interface of the region.
    catalog_extra: tuple[tuple[str, str], ...] = field(default_factory=tuple)


def from_environment(environ: Mapping[str, str]) -> KeystoneSettings:
    extra = []
    for item in env_list(environ, "VMIMAGE_CATALOG_EXTRA"):
        kind, sep, url = item.partition("=")
        if not sep or not kind.strip() or not url.strip().startswith(("http://", "https://")):
            raise ValueError(f"VMIMAGE_CATALOG_EXTRA: '{item}' is not TYPE=http(s)://URL")
        extra.append((kind.strip(), url.strip().rstrip("/")))
    return KeystoneSettings(catalog_extra=tuple(extra))


def keystone_settings(request: Request) -> KeystoneSettings:
    found = face_context(request).settings
    return found if isinstance(found, KeystoneSettings) else KeystoneSettings()
