"""What a caller may ask of an image list; repositories turn it into a query."""

from __future__ import annotations

import enum
from dataclasses import dataclass, field
from datetime import datetime

from vmimage.core.errors import Invalid
from vmimage.core.images import ImageStatus, OsFamily
from vmimage.core.paging import PageRequest

SORT_KEYS = ("name", "status", "container_format", "disk_format", "size", "id",
             "created_at", "updated_at", "min_disk", "min_ram", "visibility", "owner", "seq")
IN_FILTER_KEYS = ("id", "name", "status", "disk_format", "container_format")
COMPARE_OPS = ("gt", "gte", "eq", "neq", "lt", "lte")


class ListScope(enum.StrEnum):
    """Which images the list starts from, before filters."""
    DEFAULT = "default"       # own + public + accepted shared
    ALL = "all"               # everything the caller may see
    PUBLIC = "public"
    COMMUNITY = "community"
    SHARED = "shared"
    PRIVATE = "private"
    MEMBER = "member"         # shared with the caller by other projects (the caller a member)


@dataclass
class TimeFilter:
    field: str     # created_at | updated_at
    op: str        # one of COMPARE_OPS
    value: datetime


@dataclass
class ImageQuery:
    project_id: str
    is_admin: bool = False
    scope: ListScope = ListScope.DEFAULT
    member_status: str = "accepted"         # accepted|pending|rejected|all
    equals: dict[str, object] = field(default_factory=dict)        # base attributes
    any_of: dict[str, list[str]] = field(default_factory=dict)     # the "in:" operator
    contains: dict[str, str] = field(default_factory=dict)        # case-insensitive substring
    properties: dict[str, str] = field(default_factory=dict)       # extra properties
    properties_or_absent: dict[str, str] = field(default_factory=dict)   # ... or the property not set
    tags: list[str] = field(default_factory=list)
    size_min: int | None = None
    size_max: int | None = None
    times: list[TimeFilter] = field(default_factory=list)
    os_hidden: bool | None = None            # None = hide hidden images
    owned: bool | None = None                # only the project's own (True) or only others' (False)
    region: str | None = None                # only this region's images (None: every region's)
    # Attributes as the cloud faces show them: platform_of(image) (core/os_catalogue.py), and
    # the architecture and boot mode with unset taken as DEFAULT_ARCHITECTURE/DEFAULT_BOOT_MODE.
    platform: str | None = None
    architecture: str | None = None
    boot_mode: str | None = None
    # The status of the image with its live disk images (parent_id = its id), combined as
    # combined_status does (core/images.py): one of these.
    machine_statuses: list[ImageStatus] | None = None
    sort: list[tuple[str, str]] = field(default_factory=lambda: [("created_at", "desc")])
    page: PageRequest = field(default_factory=PageRequest)   # PageRequest(None): every match

    def validate(self) -> None:
        for key, direction in self.sort:
            if key not in SORT_KEYS:
                raise Invalid(f"Unknown sort key '{key}'")
            if direction not in ("asc", "desc"):
                raise Invalid(f"Unknown sort direction '{direction}'")
        if "os_family" in self.equals and self.equals["os_family"] not in tuple(OsFamily):
            raise Invalid(f"os_family must be one of {', '.join(OsFamily)}", field="os_family")
        self.page.validate()
        if self.member_status not in ("accepted", "pending", "rejected", "all"):
            raise Invalid("member_status must be accepted, pending, rejected or all")
        if self.size_min is not None and self.size_max is not None and self.size_min > self.size_max:
            raise Invalid("size_min is larger than size_max")
