"""The JD Cloud face's own settings, read from the service's environment when it is mounted."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

from starlette.requests import Request

from vmimage.faces.contract import env_list, face_context


@dataclass(frozen=True)
class JdSettings:
    regions: tuple[str, ...] = ("cn-north-1",)     # the regions this face serves (VMIMAGE_JD_REGIONS)


def from_environment(environ: Mapping[str, str]) -> JdSettings:
    return JdSettings(regions=tuple(env_list(environ, "VMIMAGE_JD_REGIONS")) or JdSettings.regions)


def jd_settings(request: Request) -> JdSettings:
    found = face_context(request).settings
    assert isinstance(found, JdSettings), "the JD face was mounted without its settings"
    return found
