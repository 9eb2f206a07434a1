"""The Glance face's own settings, read from the service's environment when it is mounted."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

from starlette.requests import Request

from vmimage.faces.contract import env_flag, face_context


@dataclass(frozen=True)
class GlanceSettings:
    # Show image locations (store URLs) to those allowed to see them; Glance's
    # show_multiple_locations (VMIMAGE_SHOW_LOCATIONS). Off by default, as in Glance: file://
    # URLs tell callers, admins included, where data sits.
    show_locations: bool = False


def from_environment(environ: Mapping[str, str]) -> GlanceSettings:
    return GlanceSettings(show_locations=env_flag(environ, "VMIMAGE_SHOW_LOCATIONS", False))


def glance_settings(request: Request) -> GlanceSettings:
    found = face_context(request).settings
    assert isinstance(found, GlanceSettings), "the Glance face was mounted without its settings"
    return found
