"""Key/value tags (the TMS style of Huawei Cloud): kept as the image's own tags, "key=value"
(a tag without "=" is a key with the empty value), so Glance, IMS's Glance-shaped routes and
these use cases see one set of tags. A key holds one value. Huawei's rules:

* set (add or update): key 1-36 characters, value 0-43, letters (any script), digits, "_"
  and "-" (the value also "."); keys unique within one request; at most 10 keys per image;
* delete: key 1-127, value at most 255, characters not checked; a tag that is not there is
  deleted already; a value given must be the stored one;
* queries (by tags) check no characters.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field

from vmimage.core.errors import Invalid, NotFound
from vmimage.core.images import Image
from vmimage.core.listing import ImageQuery, ListScope
from vmimage.core.paging import PageRequest
from vmimage.core.policy import Caller
from vmimage.core.services import images as svc
from vmimage.core.services.deps import Deps

MAX_KEYS = 10                     # key/value tags per image
KEY_MAX, VALUE_MAX = 36, 43       # when set
DELETE_KEY_MAX, DELETE_VALUE_MAX = 127, 255
QUERY_KEYS, QUERY_VALUES = 10, 10
FILTER_LIMIT_MAX, FILTER_LIMIT_DEFAULT = 1000, 10
_KEY = re.compile(r"^[\w-]+$")
_VALUE = re.compile(r"^[\w.-]*$")


def split(tag: str) -> tuple[str, str]:
    key, _, value = tag.partition("=")
    return key, value


def joined(key: str, value: str) -> str:
    return f"{key}={value}"


def _text(value: object, what: str) -> str:
    if not isinstance(value, str):
        raise Invalid(f"The tag {what} must be a string", field="tags")
    return value


def check_set(tags: Sequence[tuple[object, object]]) -> list[tuple[str, str]]:
    """Tags to add or update, checked as Huawei checks them."""
    checked: list[tuple[str, str]] = []
    for raw_key, raw_value in tags:
        key, value = _text(raw_key, "key"), _text(raw_value, "value")
        if not key or len(key) > KEY_MAX or not _KEY.match(key):
            raise Invalid(f"Tag key '{key}': 1-{KEY_MAX} letters, digits, '_' or '-'", field="tags")
        if len(value) > VALUE_MAX or not _VALUE.match(value):
            raise Invalid(f"Tag value '{value}': at most {VALUE_MAX} letters, digits, '_', '-' or '.'",
                          field="tags")
        checked.append((key, value))
    _unique_keys(k for k, _ in checked)
    return checked


def check_delete(tags: Sequence[tuple[object, object | None]]) -> list[tuple[str, str | None]]:
    checked: list[tuple[str, str | None]] = []
    for raw_key, raw_value in tags:
        key = _text(raw_key, "key")
        value = None if raw_value is None else _text(raw_value, "value")
        if not key or len(key) > DELETE_KEY_MAX or (value is not None and len(value) > DELETE_VALUE_MAX):
            raise Invalid(f"Tag key '{key}': 1-{DELETE_KEY_MAX} characters, value at most {DELETE_VALUE_MAX}",
                          field="tags")
        checked.append((key, value))
    return checked


def _unique_keys(keys: Iterable[str]) -> None:
    seen: set[str] = set()
    for key in keys:
        if key in seen:
            raise Invalid(f"Tag key '{key}' is given twice", field="tags")
        seen.add(key)


def set_tags(deps: Deps, caller: Caller, image_id: str, tags: Sequence[tuple[object, object]]) -> Image:
    """Add the tags, or give their keys the new values (the owner's image)."""
    wanted = dict(check_set(tags))

    def edit(current: list[str]) -> list[str]:
        kept = [t for t in current if split(t)[0] not in wanted]
        result = kept + [joined(k, v) for k, v in wanted.items()]
        if len({split(t)[0] for t in result}) > MAX_KEYS:
            raise Invalid(f"An image has at most {MAX_KEYS} tags", field="tags", reason="too_many")
        return result
    return svc.edit_tags(deps, caller, image_id, edit)


def delete_tags(deps: Deps, caller: Caller, image_id: str, tags: Sequence[tuple[object, object | None]],
                must_exist: bool = False) -> Image:
    """Remove the tags of these keys (with this value, when one is given). A tag not there is
    removed already, unless `must_exist` (a single tag named in the path: NotFound)."""
    doomed = check_delete(tags)

    def matches(tag: str) -> bool:
        key, value = split(tag)
        return any(key == k and (v is None or value == v) for k, v in doomed)

    def edit(current: list[str]) -> list[str]:
        if must_exist and not any(matches(t) for t in current):
            raise NotFound(f"Tag '{doomed[0][0]}' not found", tag=doomed[0][0])
        return [t for t in current if not matches(t)]
    return svc.edit_tags(deps, caller, image_id, edit)


def own_images(deps: Deps, caller: Caller) -> list[Image]:
    """The project's own images (a project's key/value tags are those of its images)."""
    query = ImageQuery(project_id=caller.project_id, scope=ListScope.ALL, owned=True,
                       sort=[("created_at", "desc"), ("id", "desc")], page=PageRequest.everything())
    return list(svc.list_images(deps, caller, query).items)


def project_tags(deps: Deps, caller: Caller) -> dict[str, list[str]]:
    """Every key of the project's images with its values, sorted."""
    found: dict[str, set[str]] = {}
    for image in own_images(deps, caller):
        for tag in image.tags:
            key, value = split(tag)
            found.setdefault(key, set()).add(value)
    return {key: sorted(values) for key, values in sorted(found.items())}


@dataclass
class TagQuery:
    """Images by tags: each a key with the values that match it (none: any value)."""
    tags: list[tuple[str, list[str]]] = field(default_factory=list)       # every one matches
    tags_any: list[tuple[str, list[str]]] = field(default_factory=list)   # at least one matches
    not_tags: list[tuple[str, list[str]]] = field(default_factory=list)   # not every one matches
    not_tags_any: list[tuple[str, list[str]]] = field(default_factory=list)  # none matches
    without_any_tag: bool = False      # only untagged images; the four above are ignored
    resource_id: str | None = None     # exact
    resource_name: str | None = None   # a part of the name (case-insensitive)
    count_only: bool = False
    limit: int = FILTER_LIMIT_DEFAULT
    offset: int = 0

    def check(self) -> None:
        for group in (self.tags, self.tags_any, self.not_tags, self.not_tags_any):
            if len(group) > QUERY_KEYS:
                raise Invalid(f"At most {QUERY_KEYS} tag keys per condition", field="tags")
            _unique_keys(k for k, _ in group)
            for key, values in group:
                if not key or len(values) > QUERY_VALUES or len(set(values)) != len(values):
                    raise Invalid(f"Tag key '{key}': not empty, at most {QUERY_VALUES} distinct values",
                                  field="tags")
        if not 1 <= self.limit <= FILTER_LIMIT_MAX:
            raise Invalid(f"limit must be 1-{FILTER_LIMIT_MAX}", field="limit")
        if self.offset < 0:
            raise Invalid("offset must not be negative", field="offset")


def _has(tags: dict[str, str], key: str, values: list[str]) -> bool:
    return key in tags and (not values or tags[key] in values)


def _selected(image: Image, query: TagQuery) -> bool:
    if query.resource_id is not None and image.id != query.resource_id:
        return False
    if query.resource_name is not None and query.resource_name.lower() not in (image.name or "").lower():
        return False
    tags = dict(split(t) for t in image.tags)
    if query.without_any_tag:
        return not tags
    return (all(_has(tags, k, v) for k, v in query.tags)
            and (not query.tags_any or any(_has(tags, k, v) for k, v in query.tags_any))
            and (not query.not_tags or not all(_has(tags, k, v) for k, v in query.not_tags))
            and not any(_has(tags, k, v) for k, v in query.not_tags_any))


def find_by_tags(deps: Deps, caller: Caller, query: TagQuery) -> tuple[int, list[Image]]:
    """(how many of the project's images match, the page asked for; empty when counting)."""
    query.check()
    found = [i for i in own_images(deps, caller) if _selected(i, query)]
    if query.count_only:
        return len(found), []
    return len(found), found[query.offset:query.offset + query.limit]
