"""The JD Cloud face's own settings, read from the service's environment when it is mounted.

Its regions are the service's (VMIMAGE_REGIONS). A service that names no regions (one region,
VMIMAGE_REGION, "RegionOne" by default) also answers its one region as `cn-north-1`, the region
JD's clients name by default, as it did before regions."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

from starlette.requests import Request

from vmimage.faces.contract import env_list, face_context

LEGACY_REGION = "cn-north-1"


@dataclass(frozen=True)
class JdSettings:
    # Another name of the one region of a service that names no regions (None: none).
    single_region_alias: str | None = LEGACY_REGION


def from_environment(environ: Mapping[str, str]) -> JdSettings:
    return JdSettings(single_region_alias=None if env_list(environ, "VMIMAGE_REGIONS") else LEGACY_REGION)


def jd_settings(request: Request) -> JdSettings:
    found = face_context(request).settings
    assert isinstance(found, JdSettings), "the JD face was mounted without its settings"
    return found


def core_region(request: Request, region_id: object) -> str | None:
    """The service's region a JD regionId names; None when it names none."""
    regions = face_context(request).deps.regions
    if region_id in regions:
        return str(region_id)
    if len(regions) == 1 and region_id == jd_settings(request).single_region_alias:
        return regions[0]
    return None
