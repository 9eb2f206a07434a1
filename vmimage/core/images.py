"""The image entity: its statuses, the transition table, and the attribute rules."""

from __future__ import annotations

import enum
import re
import secrets
import string
import uuid
from collections.abc import Iterable, Iterator, MutableSet
from dataclasses import dataclass, field
from datetime import datetime

from vmimage.core.errors import Forbidden, Invalid, InvalidTransition, NotFound, OpaqueFormat


class ImageStatus(enum.StrEnum):
    QUEUED = "queued"
    SAVING = "saving"
    UPLOADING = "uploading"
    IMPORTING = "importing"
    ACTIVE = "active"
    DEACTIVATED = "deactivated"
    PENDING_DELETE = "pending_delete"
    KILLED = "killed"
    DELETED = "deleted"


S = ImageStatus
TRANSITIONS: dict[ImageStatus, frozenset[ImageStatus]] = {
    S.QUEUED: frozenset({S.SAVING, S.UPLOADING, S.IMPORTING, S.ACTIVE, S.DELETED, S.KILLED}),
    S.SAVING: frozenset({S.ACTIVE, S.QUEUED, S.DELETED, S.KILLED}),
    S.UPLOADING: frozenset({S.IMPORTING, S.QUEUED, S.DELETED}),
    S.IMPORTING: frozenset({S.ACTIVE, S.QUEUED, S.DELETED, S.KILLED}),
    S.ACTIVE: frozenset({S.DEACTIVATED, S.PENDING_DELETE, S.DELETED, S.KILLED}),
    S.DEACTIVATED: frozenset({S.ACTIVE, S.DELETED}),
    S.PENDING_DELETE: frozenset({S.DELETED, S.ACTIVE}),
    S.KILLED: frozenset({S.DELETED}),
    S.DELETED: frozenset(),
}
# Leaving these for a data-bearing status needs both formats set.
_NEEDS_FORMATS_FROM = {S.QUEUED, S.UPLOADING}
_DATA_BEARING = {S.SAVING, S.IMPORTING, S.ACTIVE}


class Visibility(enum.StrEnum):
    PUBLIC = "public"
    COMMUNITY = "community"
    SHARED = "shared"
    PRIVATE = "private"


# Visibilities that show an image to every project.
PUBLISHED = frozenset({Visibility.PUBLIC, Visibility.COMMUNITY})


class ImageRelation(enum.StrEnum):
    """How an image relates to the project looking at it."""
    OWN = "own"                 # the project's own, whatever its visibility
    PUBLIC = "public"           # another project's, public
    COMMUNITY = "community"     # another project's, community
    SHARED = "shared"           # another project's, shared with this one (or seen by an admin)


class MemberStatus(enum.StrEnum):
    PENDING = "pending"
    ACCEPTED = "accepted"
    REJECTED = "rejected"


class ImageKind(enum.StrEnum):
    """What the image is for; the Huawei and JD faces read it."""
    SYSTEM_DISK = "system_disk"
    DATA_DISK = "data_disk"
    WHOLE_MACHINE = "whole_machine"
    ISO = "iso"


class ImageSource(enum.StrEnum):
    UPLOAD = "upload"
    FILE = "file"
    OBJECT = "object"
    SERVER = "server"
    VOLUME = "volume"
    SNAPSHOT = "snapshot"


class OsFamily(enum.StrEnum):
    LINUX = "linux"
    WINDOWS = "windows"


class BootMode(enum.StrEnum):
    BIOS = "bios"
    UEFI = "uefi"


# What an image whose architecture or boot mode is not set is taken to have.
DEFAULT_ARCHITECTURE = "x86_64"
DEFAULT_BOOT_MODE = BootMode.BIOS

# How far along an image is, to give several images (a machine image and its disks) one
# status: the lowest rank among theirs. A failure outranks everything, then going away
# (deleting, deactivated), then the steps of filling an image in order; active when all are.
STATUS_RANK: dict[ImageStatus, int] = {s: rank for rank, s in enumerate((
    S.KILLED, S.DELETED, S.PENDING_DELETE, S.DEACTIVATED, S.QUEUED, S.UPLOADING, S.SAVING, S.IMPORTING,
    S.ACTIVE))}


DISK_FORMATS = ("ami", "ari", "aki", "vhd", "vhdx", "vmdk", "raw", "qcow2", "vdi", "iso", "ploop")
# Formats vmimage knows by name but cannot read (Huawei's ZVHD, ZVHD2): their bytes are kept
# as they are and nothing that needs their contents (a disk, a conversion) is done with them.
OPAQUE_DISK_FORMATS = ("zvhd", "zvhd2")
KNOWN_DISK_FORMATS = DISK_FORMATS + OPAQUE_DISK_FORMATS
CONTAINER_FORMATS = ("ami", "ari", "aki", "bare", "ovf", "ova", "docker", "compressed")

# Attribute sets that callers may never write (create or update).
DISALLOWED = frozenset({"direct_url", "self", "file", "schema", "stores", "locations"})
READ_ONLY = frozenset({"created_at", "updated_at", "status", "checksum", "size", "virtual_size",
                       "id", "os_hash_algo", "os_hash_value"})
RESERVED = frozenset({"location", "deleted", "deleted_at"})
RESERVED_PREFIX = "os_glance"
# A well-known extra property: the most memory (MB, digits; "0" or absent: no limit) a server of
# the image may have. Huawei IMS sets it; servers are held to it.
MAX_RAM_PROPERTY = "max_ram"
MAX_NAME = 255


@dataclass
class Location:
    store: str
    key: str          # the blob's key in its store; for the http store, the URL itself
    metadata: dict = field(default_factory=dict)


class TagSet(MutableSet[str]):
    """An image's tags: a set that keeps the order they were given in (IMS shows them so)."""

    def __init__(self, tags: Iterable[str] = ()) -> None:
        self._tags = dict.fromkeys(tags)

    def __contains__(self, tag: object) -> bool:
        return tag in self._tags

    def __iter__(self) -> Iterator[str]:
        return iter(self._tags)

    def __len__(self) -> int:
        return len(self._tags)

    def add(self, tag: str) -> None:
        self._tags[tag] = None

    def discard(self, tag: str) -> None:
        self._tags.pop(tag, None)

    def __repr__(self) -> str:
        return f"TagSet({list(self._tags)!r})"


@dataclass
class Image:
    id: str
    owner: str
    name: str | None = None
    # A second, caller-facing identity: a UUID the caller chose, or "img-" + 12 base36 chars.
    ref: str = field(default_factory=lambda: new_image_ref())
    seq: int | None = None        # a small integer id, given by the repository on add
    status: ImageStatus = ImageStatus.QUEUED
    visibility: Visibility = Visibility.SHARED
    protected: bool = False
    os_hidden: bool = False
    disk_format: str | None = None
    container_format: str | None = None
    min_disk: int = 0
    min_ram: int = 0
    size: int | None = None
    virtual_size: int | None = None
    checksum: str | None = None
    os_hash_algo: str | None = None
    os_hash_value: str | None = None
    # What the other faces read; the Glance face shows some as well-known properties.
    os_version: str | None = None       # a catalogue name (core/os_catalogue.py)
    os_release: str | None = None       # the distribution's version as the caller wrote it ("22.04")
    os_family: OsFamily | None = None
    os_distribution: str | None = None
    architecture: str | None = None
    boot_mode: BootMode | None = None
    kind: ImageKind = ImageKind.SYSTEM_DISK
    source: ImageSource = ImageSource.UPLOAD
    source_ref: str | None = None
    description: str | None = None
    # A disk of a whole-machine image: the machine's (system disk) image, the disk's device
    # and the volume it asks for (type, provisioned IOPS).
    parent_id: str | None = None
    device: str | None = None
    volume_type: str | None = None
    iops: int | None = None
    auto_delete: bool | None = None     # a disk asked to go with the server made from the image
    # What an inspection found inside (core/insight.py): status, report, the attributes it filled.
    insight: dict | None = None
    tags: TagSet = field(default_factory=lambda: TagSet())
    properties: dict[str, str] = field(default_factory=dict)
    locations: list[Location] = field(default_factory=list)
    created_at: datetime | None = None
    updated_at: datetime | None = None
    region: str = ""      # the region the image lives in (its data in that region's stores)

    def move_to(self, target: ImageStatus) -> None:
        """The one place where an image's status changes."""
        if target not in TRANSITIONS[self.status]:
            raise InvalidTransition("image", self.status.value, target.value)
        if self.status in _NEEDS_FORMATS_FROM and target in _DATA_BEARING:
            require_formats(self)
        if target in (ImageStatus.QUEUED, ImageStatus.KILLED):     # no data, so nothing measured
            self.size = self.virtual_size = None
            self.checksum = self.os_hash_algo = self.os_hash_value = None
        self.status = target

    @property
    def has_data(self) -> bool:
        return bool(self.locations)


# What an image knows of the operating system on it; an image made from a disk inherits it
# from the image the disk came from (inherit_os).
OS_IDENTITY = ("os_version", "os_release", "os_family", "os_distribution", "architecture", "boot_mode")


def inherit_os(image: Image, origin: Image) -> None:
    for key in OS_IDENTITY:
        setattr(image, key, getattr(origin, key))


def relation(image: Image, project_id: str) -> ImageRelation:
    """The image's relation to a project: its own first, then by visibility."""
    if image.owner == project_id:
        return ImageRelation.OWN
    if image.visibility == Visibility.PUBLIC:
        return ImageRelation.PUBLIC
    if image.visibility == Visibility.COMMUNITY:
        return ImageRelation.COMMUNITY
    return ImageRelation.SHARED


def combined_status(statuses: Iterable[ImageStatus]) -> ImageStatus:
    """One status for several images: the least advanced (lowest STATUS_RANK) of theirs."""
    return min(statuses, key=STATUS_RANK.__getitem__)


def staging_key(image_id: str) -> str:
    """Staged data (import's first step) lives in the default store, where every vmimage
    process reaches it, under this key."""
    return f"staging-{image_id}"


def new_image_id() -> str:
    return str(uuid.uuid4())


_BASE36 = string.digits + string.ascii_lowercase


def new_image_ref(length: int = 12) -> str:
    """A new ref: "img-" and `length` random base36 characters (one draw from the system's
    generator, not one per character)."""
    n = secrets.randbelow(36 ** length)
    chars = []
    for _ in range(length):
        n, digit = divmod(n, 36)
        chars.append(_BASE36[digit])
    return "img-" + "".join(chars)


_SHORT_REF = re.compile(r"^img-[0-9a-z]{8,32}$")


def check_ref(ref: object) -> str:
    """A chosen ref is a UUID (kept in its canonical form) or, for faces whose dialect has
    ids of its own form, "img-" + 8 to 32 lowercase base36 characters."""
    if isinstance(ref, str) and _SHORT_REF.match(ref):
        return ref
    try:
        return str(uuid.UUID(str(ref)))
    except ValueError:
        raise Invalid("'ref' must be a UUID", field="ref") from None


def memory_bounds(image: Image) -> tuple[int, int | None]:
    """(min_ram, max_ram) of a server of this image, in MB; max_ram None: no limit."""
    raw = image.properties.get(MAX_RAM_PROPERTY, "")
    most = int(raw) if re.fullmatch(r"[0-9]{1,12}", raw) else 0
    return image.min_ram, most or None


def require_readable(disk_format: str | None, purpose: str) -> None:
    """Refuse what needs the contents of bytes vmimage cannot read."""
    if disk_format in OPAQUE_DISK_FORMATS:
        raise OpaqueFormat(f"Cannot {purpose}: vmimage cannot read {disk_format} contents",
                           disk_format=disk_format)


def require_formats(image: Image) -> None:
    if not image.disk_format or not image.container_format:
        raise Invalid("disk_format and container_format must be set first", image_id=image.id)


def check_writable_key(key: str) -> None:
    """Refuse writes to attributes the service owns."""
    if key in DISALLOWED or key in READ_ONLY or key in RESERVED or key.startswith(RESERVED_PREFIX):
        raise Forbidden(f"Attribute '{key}' is reserved or read-only", key=key)


def validate_property(key: str, value: object) -> str:
    if not isinstance(key, str) or not key or len(key) > MAX_NAME:
        raise Invalid(f"Property name must be 1 to {MAX_NAME} characters")
    check_writable_key(key)
    if not isinstance(value, str):
        raise Invalid(f"Property '{key}' must be a string")
    if len(value) > 65535:
        raise Invalid(f"Property '{key}' is too long")
    return value


def validate_tag(tag: object) -> str:
    if not isinstance(tag, str) or not tag or len(tag) > MAX_NAME:
        raise Invalid(f"Tag must be a string of 1 to {MAX_NAME} characters")
    return tag


@dataclass(frozen=True)
class TextRule:
    """A naming rule a dialect asks the core to hold a name or text to: length, allowed
    characters, no surrounding spaces. Errors name the field and why (missing, too_long,
    format) so each face can say it in its own codes."""
    max_length: int = MAX_NAME
    allowed: re.Pattern | None = None    # the whole value must match
    trimmed: bool = False                # no leading or trailing space
    required: bool = True

    def check(self, value: object, field: str = "name") -> str | None:
        if value is None and not self.required:
            return None
        if not isinstance(value, str) or (self.required and not value):
            raise Invalid(f"'{field}' is required and must be a string", field=field, reason="missing")
        if len(value) > self.max_length:
            raise Invalid(f"'{field}' is longer than {self.max_length} characters", field=field, reason="too_long")
        if (self.trimmed and value != value.strip()) or (self.allowed is not None and not self.allowed.match(value)):
            raise Invalid(f"'{field}' has characters it may not have", field=field, reason="format")
        return value


# The public-cloud image name (Huawei IMS, JD Cloud): 1-128 letters (CJK included), digits,
# '-', '.', '_' and spaces, no space at either end; descriptions up to 1024 without '<', '>' or CR.
CLOUD_IMAGE_NAME = TextRule(128, re.compile(r"^[\w\-. ]+$"), trimmed=True)
CLOUD_DESCRIPTION = TextRule(1024, re.compile(r"^[^<>\r]*$"), required=False)
# The same characters for an image made as metadata first (IMS's POST /v2/images): optional, 1-255.
CLOUD_METADATA_NAME = TextRule(MAX_NAME, CLOUD_IMAGE_NAME.allowed, trimmed=True, required=False)


def refuse_encryption_key(key_id: object) -> None:
    """vmimage keeps no encryption keys: an image asked to be encrypted with one is refused (no
    such key here), never made plain."""
    if key_id is not None:
        raise NotFound(f"Encryption key '{key_id}' does not exist", encryption_key=str(key_id))


def check_range(value: object, low: int, high: int, field: str) -> int:
    """An integer (not a bool) within [low, high]."""
    if isinstance(value, bool) or not isinstance(value, int) or not low <= value <= high:
        raise Invalid(f"'{field}' must be an integer from {low} to {high}", field=field)
    return value
