"""Image locations a caller manages (Glance's show_multiple_locations PATCH /locations).

Callers may only point at data in read-only stores (http URLs under the URL policy):
a caller-given file:// or store-internal location would let anyone read the service's
disks. Locations the service made (its own stores) can be kept or re-described, never
pointed elsewhere.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

from vmimage.core.errors import Conflict, Forbidden, Invalid, QuotaExceeded, VmImageError
from vmimage.core.images import Image, ImageStatus, Location
from vmimage.core.policy import Caller
from vmimage.core.services.deps import Deps

MAX_LOCATIONS = 10
# Hash algorithms a caller may name, with their hex digest lengths.
HASH_ALGOS = {"md5": 32, "sha1": 40, "sha224": 56, "sha256": 64, "sha384": 96, "sha512": 128}
_HEX = re.compile(r"^[0-9a-f]+$")


@dataclass
class NewLocation:
    url: str
    metadata: dict[str, Any]
    validation: dict[str, str]


def parse_location(value: Any) -> NewLocation:
    if not isinstance(value, dict) or not isinstance(value.get("url"), str) or not value["url"]:
        raise Invalid("A location is an object with a 'url' and optional 'metadata'")
    metadata = value.get("metadata", {})
    if not isinstance(metadata, dict):
        raise Invalid("A location's 'metadata' must be an object")
    validation = value.get("validation_data") or {}
    try:
        check_validation_data(validation, allow_checksum=True)
    except Invalid as exc:   # Glance answers a location's bad validation data with 409
        raise Conflict(exc.message) from None
    if validation.get("os_hash_algo", "sha512") != "sha512":
        raise Conflict("validation_data must use the service's hash algorithm, sha512")
    return NewLocation(value["url"], metadata, validation)


def check_validation_data(data: Any, allow_checksum: bool = False) -> dict[str, str]:
    if not isinstance(data, dict):
        raise Invalid("'validation_data' must be an object")
    allowed = {"os_hash_algo", "os_hash_value"} | ({"checksum"} if allow_checksum else set())
    unknown = set(data) - allowed
    if unknown:
        raise Invalid(f"Unknown validation_data keys: {', '.join(sorted(unknown))}")
    for key, value in data.items():
        if not isinstance(value, str):
            raise Invalid(f"validation_data '{key}' must be a string")
    algo, value = data.get("os_hash_algo"), data.get("os_hash_value")
    if value is not None and algo is None:
        raise Invalid("validation_data has os_hash_value without os_hash_algo")
    if algo is not None:
        if algo not in HASH_ALGOS:
            raise Invalid(f"Unsupported hash algorithm '{algo}'")
        if value is not None and (len(value) != HASH_ALGOS[algo] or not _HEX.match(value)):
            raise Invalid(f"os_hash_value is not a {algo} hex digest")
    checksum = data.get("checksum")
    if checksum is not None and (len(checksum) != 32 or not _HEX.match(checksum)):
        raise Invalid("checksum is not an md5 hex digest")
    return data


def location_sizes(deps: Deps, values: list[Any]) -> dict[str, int | None]:
    """Reach every new URL before any transaction starts: unreachable or filtered -> 400."""
    sizes: dict[str, int | None] = {}
    for value in values:
        loc = parse_location(value)
        store = deps.store_for_url(loc.url)
        if store is None:
            raise Invalid(f"Locations with the scheme of '{loc.url}' are not accepted")
        try:
            sizes[loc.url] = store.size(loc.url)
        except VmImageError as exc:
            raise Invalid(f"Invalid location {loc.url}: {exc.message}") from None
        if sizes[loc.url] == 0:
            raise Invalid(f"Invalid location {loc.url}: it holds no data")
    return sizes


def apply_location_change(deps: Deps, caller: Caller, image: Image, op: str, index: str | None, value: Any,
                          sizes: dict[str, int | None], dropped: list[Location]) -> None:
    """One PATCH operation on /locations; `dropped` collects locations whose data must go."""
    image.locations = deps.by_weight(image.locations)    # indexes count in the order callers see
    if op == "remove":
        _remove(caller, image, index, dropped)
    elif op == "add":
        _add(deps, image, index, parse_location(value), sizes)
    elif op == "replace":
        if index is not None:
            raise Invalid("Only the whole /locations list can be replaced")
        if not isinstance(value, list):
            raise Invalid("/locations must be replaced by a list")
        new = [parse_location(v) for v in value]
        if not image.locations:
            for loc in new:
                _add(deps, image, "-", loc, sizes)
            return
        urls = [deps.location_url(existing) for existing in image.locations]
        if [loc.url for loc in new] != urls:
            raise Invalid("Replacing locations may change their metadata only, not which URLs they are")
        for existing, updated in zip(image.locations, new):
            existing.metadata = {k: v for k, v in updated.metadata.items() if k != "store"}
    else:
        raise Invalid(f"Unknown operation '{op}'")


def _remove(caller: Caller, image: Image, index: str | None, dropped: list[Location]) -> None:
    if not caller.is_admin:
        raise Forbidden("Only an administrator may remove an image's location")
    if index is None or not index.isdigit() or int(index) >= len(image.locations):
        raise Invalid(f"No location at index '{index}'")
    if len(image.locations) == 1 and image.status != ImageStatus.QUEUED:
        raise Forbidden("The image's last location cannot be removed")
    dropped.append(image.locations.pop(int(index)))


def _add(deps: Deps, image: Image, index: str | None, loc: NewLocation, sizes: dict[str, int | None]) -> None:
    if image.status not in (ImageStatus.QUEUED, ImageStatus.ACTIVE):
        raise Conflict(f"Image in status '{image.status}' cannot take a location", image_id=image.id)
    if len(image.locations) >= MAX_LOCATIONS:
        raise QuotaExceeded(f"An image has at most {MAX_LOCATIONS} locations")
    store = deps.store_for_url(loc.url)
    if store is None or loc.url not in sizes:
        raise Invalid(f"Locations with the scheme of '{loc.url}' are not accepted")
    if any(deps.location_url(existing) == loc.url for existing in image.locations):
        raise Invalid(f"Image already has the location {loc.url}")
    _apply_validation(image, loc.validation)
    position = len(image.locations) if index in (None, "-") else _position(index, image)
    image.locations.insert(position, Location(store.name, loc.url,
                                              {k: v for k, v in loc.metadata.items() if k != "store"}))
    if image.size is None and sizes[loc.url] is not None:
        image.size = sizes[loc.url]
    if image.status == ImageStatus.QUEUED:
        image.move_to(ImageStatus.ACTIVE)


def _position(index: str, image: Image) -> int:
    if not index.isdigit() or int(index) > len(image.locations):
        raise Invalid(f"Invalid location index '{index}'")
    return int(index)


def _apply_validation(image: Image, data: dict[str, str]) -> None:
    """Values a location vouches for must agree with what the image already has."""
    pairs = [("checksum", "checksum"), ("os_hash_algo", "os_hash_algo"), ("os_hash_value", "os_hash_value")]
    for key, attr in pairs:
        given, current = data.get(key), getattr(image, attr)
        if given is not None and current is not None and given != current:
            raise Conflict(f"The location's {key} does not match the image's", image_id=image.id)
    for key, attr in pairs:
        if data.get(key) is not None:
            setattr(image, attr, data[key])
