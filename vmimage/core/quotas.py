"""Per-project and per-image limits. -1 means unlimited."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, replace

from vmimage.core.errors import QuotaExceeded, TooLarge


@dataclass(frozen=True)
class Limits:
    image_count: int = -1          # images per project
    image_bytes: int = -1          # bytes of image data per project
    properties_per_image: int = 128
    tags_per_image: int = 128
    members_per_image: int = 128
    max_image_size: int = 1 << 40  # the size cap for one image's data (1 TiB)

    def for_project(self, overrides: dict[str, int]) -> "Limits":
        known = {k: v for k, v in overrides.items() if hasattr(self, k)}
        return replace(self, **known) if known else self


def _over(limit: int, value: int) -> bool:
    return limit >= 0 and value > limit


# Usage is passed as a function: counting a project's images costs a query that grows with
# the project, so it runs only when a limit is set.

def check_image_count(limits: Limits, current: Callable[[], int], adding: int = 1) -> None:
    if limits.image_count >= 0 and _over(limits.image_count, current() + adding):
        raise QuotaExceeded(f"Image count quota of {limits.image_count} reached",
                            resource="image_count_total", limit=limits.image_count)


def check_image_bytes(limits: Limits, used: Callable[[], int], adding: int) -> None:
    if limits.image_bytes >= 0 and _over(limits.image_bytes, used() + adding):
        raise QuotaExceeded(f"Image storage quota of {limits.image_bytes} bytes exceeded",
                            resource="image_size_total", limit=limits.image_bytes)


def check_size_cap(limits: Limits, size: int) -> None:
    if _over(limits.max_image_size, size):
        raise TooLarge(f"Image data exceeds the size cap of {limits.max_image_size} bytes",
                       limit=limits.max_image_size)


def check_declared_size(limits: Limits, used: Callable[[], int], declared_size: int | None) -> None:
    """Before any byte arrives: the size the caller announced must fit the cap and the quota."""
    if declared_size is not None:
        check_size_cap(limits, declared_size)
        check_image_bytes(limits, used, declared_size)


def check_per_image(limits: Limits, properties: int, tags: int) -> None:
    if _over(limits.properties_per_image, properties):
        raise QuotaExceeded(f"More than {limits.properties_per_image} properties",
                            resource="image_property")
    if _over(limits.tags_per_image, tags):
        raise QuotaExceeded(f"More than {limits.tags_per_image} tags", resource="image_tag")


def check_members(limits: Limits, count: int) -> None:
    if _over(limits.members_per_image, count):
        raise QuotaExceeded(f"More than {limits.members_per_image} members", resource="image_member")
