"""Metadata definitions ("metadefs"): a catalogue describing the metadata that images, flavors,
volumes... may carry, so that tools can offer it (names, types, allowed values).

A namespace groups property definitions, objects (named groups of properties) and tags, and
is associated with the resource types its properties apply to, each with an optional name
prefix ("hw_" on images, "hw:" on flavors). Reads follow the namespace's visibility; every
change is an administrator's; a protected namespace's content cannot be deleted.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Self

from vmimage.core.errors import Forbidden, Invalid, NotFound, Protected
from vmimage.core.paging import DEFAULT_LIMIT, MAX_LIMIT, PageRequest, page_size  # noqa: F401 (the catalogue's limits)
from vmimage.core.policy import Caller, owns

VISIBILITIES = ("public", "private")
PROPERTY_TYPES = ("array", "boolean", "integer", "number", "object", "string")
NAME_MAX = 80               # namespace, object, property, tag and resource type names
DISPLAY_NAME_MAX = 80
DESCRIPTION_MAX = 500       # a namespace's description
OWNER_MAX = 255
NAMESPACE_SORT_KEYS = ("created_at", "updated_at", "namespace", "display_name", "visibility", "owner")
CHILD_SORT_KEYS = ("created_at", "updated_at", "name")


@dataclass
class Namespace:
    id: str
    namespace: str
    display_name: str | None = None
    description: str | None = None
    visibility: str = "private"
    protected: bool = False
    owner: str | None = None
    created_at: datetime | None = None
    updated_at: datetime | None = None


@dataclass
class MetadefObject:
    id: str
    namespace_id: str
    name: str
    description: str | None = None
    required: list[str] | None = None
    properties: dict[str, dict[str, Any]] | None = None
    created_at: datetime | None = None
    updated_at: datetime | None = None


@dataclass
class MetadefProperty:
    id: str
    namespace_id: str
    name: str
    definition: dict[str, Any] = field(default_factory=dict)   # title, type, ... (no name)
    created_at: datetime | None = None
    updated_at: datetime | None = None


@dataclass
class MetadefTag:
    id: str
    namespace_id: str
    name: str
    created_at: datetime | None = None
    updated_at: datetime | None = None


@dataclass
class ResourceType:
    name: str
    protected: bool = False     # seeded by the catalogue
    created_at: datetime | None = None
    updated_at: datetime | None = None


@dataclass
class Association:
    """A namespace applies to a resource type, its property names prefixed with `prefix`."""
    namespace_id: str
    resource_type: str
    prefix: str | None = None
    properties_target: str | None = None
    created_at: datetime | None = None
    updated_at: datetime | None = None


@dataclass
class NamespaceContent:
    namespace: Namespace
    associations: list[Association] = field(default_factory=list)
    objects: list[MetadefObject] = field(default_factory=list)
    properties: list[MetadefProperty] = field(default_factory=list)
    tags: list[MetadefTag] = field(default_factory=list)


# --- what callers send, validated ---------------------------------------------------------------

@dataclass
class ObjectSpec:
    name: str
    description: str | None = None
    required: list[str] | None = None
    properties: dict[str, dict[str, Any]] | None = None


@dataclass
class AssociationSpec:
    name: str
    prefix: str | None = None
    properties_target: str | None = None


@dataclass
class NamespaceSpec:
    namespace: str
    display_name: str | None = None
    description: str | None = None
    visibility: str | None = None
    protected: bool | None = None
    owner: str | None = None
    associations: list[AssociationSpec] = field(default_factory=list)
    objects: list[ObjectSpec] = field(default_factory=list)
    properties: dict[str, dict[str, Any]] = field(default_factory=dict)
    tags: list[str] = field(default_factory=list)


def _only(data: dict, allowed: set[str], what: str) -> None:
    unknown = sorted(set(data) - allowed)
    if unknown:
        raise Invalid(f"Unknown attribute(s) for {what}: {', '.join(unknown)}")


def _object(value: Any, what: str) -> dict:
    if not isinstance(value, dict):
        raise Invalid(f"{what} must be a JSON object")
    return value


def _text(value: Any, what: str, max_len: int | None = None, optional: bool = True) -> str | None:
    if value is None and optional:
        return None
    if not isinstance(value, str):
        raise Invalid(f"'{what}' must be a string")
    if max_len is not None and len(value) > max_len:
        raise Invalid(f"'{what}' is longer than {max_len} characters")
    return value


def _bool(value: Any, what: str) -> bool | None:
    if value is not None and not isinstance(value, bool):
        raise Invalid(f"'{what}' must be a boolean")
    return value


def _count(value: Any, what: str) -> int | None:
    if value is not None and (isinstance(value, bool) or not isinstance(value, int) or value < 0):
        raise Invalid(f"'{what}' must be an integer of at least 0")
    return value


def _number(value: Any, what: str) -> int | float | None:
    if value is not None and (isinstance(value, bool) or not isinstance(value, (int, float))):
        raise Invalid(f"'{what}' must be a number")
    return value


def _strings(value: Any, what: str, unique: bool = False) -> list[str] | None:
    if value is None:
        return None
    if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
        raise Invalid(f"'{what}' must be an array of strings")
    if unique and len(set(value)) != len(value):
        raise Invalid(f"'{what}' must not repeat a value")
    return list(value)


def check_name(value: Any, what: str) -> str:
    """A name in the catalogue; it is addressed in URL paths, so it cannot hold a '/'."""
    if not isinstance(value, str) or not value.strip():
        raise Invalid(f"'{what}' must be a non-empty string")
    if len(value) > NAME_MAX:
        raise Invalid(f"'{what}' is longer than {NAME_MAX} characters")
    if "/" in value:
        raise Invalid(f"'{what}' must not contain '/'")
    return value


_DEFINITION_KEYS = {"name", "title", "type", "description", "operators", "default", "readonly", "minimum",
                    "maximum", "enum", "pattern", "minLength", "maxLength", "items", "uniqueItems", "minItems",
                    "maxItems", "additionalItems"}
# What the service adds to what it shows. Inside a namespace's content (a namespace shown, then
# sent back, as clients do on update and import) it is ignored.
GENERATED = ("self", "schema", "created_at", "updated_at")


def _without_generated(data: dict) -> dict:
    return {k: v for k, v in data.items() if k not in GENERATED}


def property_definition(data: Any, key: str | None = None) -> tuple[str, dict[str, Any]]:
    """(name, definition without the name) of a property definition. One of several is named
    by its key in the enclosing dictionary; a single one by its "name"."""
    data = _object(data, "A property definition")
    _only(data, _DEFINITION_KEYS, "a property definition")
    name = check_name(data.get("name") if key is None else key, "name")
    if not isinstance(data.get("title"), str):
        raise Invalid("A property definition needs a string 'title'")
    if data.get("type") not in PROPERTY_TYPES:
        raise Invalid(f"A property's 'type' must be one of {', '.join(PROPERTY_TYPES)}")
    _text(data.get("description"), "description")
    _strings(data.get("operators"), "operators")
    for key in ("readonly", "uniqueItems", "additionalItems"):
        _bool(data.get(key), key)
    for key in ("minLength", "maxLength", "minItems", "maxItems"):
        _count(data.get(key), key)
    for key in ("minimum", "maximum"):
        _number(data.get(key), key)
    for low, high in (("minimum", "maximum"), ("minLength", "maxLength"), ("minItems", "maxItems")):
        if data.get(low) is not None and data.get(high) is not None and data[low] > data[high]:
            raise Invalid(f"'{low}' is greater than '{high}'")
    if data.get("enum") is not None and not isinstance(data["enum"], list):
        raise Invalid("'enum' must be an array")
    pattern = _text(data.get("pattern"), "pattern")
    if pattern is not None:
        try:
            re.compile(pattern)
        except re.error as exc:
            raise Invalid(f"'pattern' is not a valid regular expression: {exc}") from None
    items = data.get("items")
    if items is not None:
        items = _object(items, "'items'")
        _only(items, {"type", "enum"}, "'items'")
        if items.get("type") is not None and items["type"] not in PROPERTY_TYPES:
            raise Invalid(f"'items.type' must be one of {', '.join(PROPERTY_TYPES)}")
        if items.get("enum") is not None and not isinstance(items["enum"], list):
            raise Invalid("'items.enum' must be an array")
    return name, {k: v for k, v in data.items() if k != "name" and v is not None}


def property_definitions(data: Any, what: str = "properties") -> dict[str, dict[str, Any]]:
    """A dictionary of property definitions keyed by name."""
    data = _object(data, f"'{what}'")
    return dict(property_definition(value, key) for key, value in data.items())


def object_spec(data: Any) -> ObjectSpec:
    data = _without_generated(_object(data, "An object"))
    _only(data, {"name", "description", "required", "properties"}, "an object")
    properties = data.get("properties")
    return ObjectSpec(name=check_name(data.get("name"), "name"),
                      description=_text(data.get("description"), "description"),
                      required=_strings(data.get("required"), "required", unique=True),
                      properties=None if properties is None else property_definitions(properties))


def association_spec(data: Any) -> AssociationSpec:
    data = _without_generated(_object(data, "A resource type association"))
    _only(data, {"name", "prefix", "properties_target"}, "a resource type association")
    return AssociationSpec(name=check_name(data.get("name"), "name"),
                           prefix=_text(data.get("prefix"), "prefix", NAME_MAX),
                           properties_target=_text(data.get("properties_target"), "properties_target", NAME_MAX))


def tag_names(data: Any) -> list[str]:
    """Names of a list of tags [{"name": ...}]; a name given twice is a duplicate."""
    if not isinstance(data, list):
        raise Invalid("'tags' must be an array")
    names = []
    for item in data:
        item = _without_generated(_object(item, "A tag"))
        _only(item, {"name"}, "a tag")
        names.append(check_name(item.get("name"), "name"))
    return names


_NAMESPACE_FIELDS = {"namespace", "display_name", "description", "visibility", "protected", "owner"}


def namespace_spec(data: Any, with_content: bool = True) -> NamespaceSpec:
    """A namespace as sent on creation, or on update (with_content=False): its content is then
    left out, as an update changes the namespace's own attributes only."""
    data = _object(data, "A namespace")
    _only(data, _NAMESPACE_FIELDS | {"resource_type_associations", "properties", "objects", "tags"},
          "a namespace")
    visibility = data.get("visibility")
    if visibility is not None and visibility not in VISIBILITIES:
        raise Invalid(f"'visibility' must be one of {', '.join(VISIBILITIES)}")
    spec = NamespaceSpec(namespace=check_name(data.get("namespace"), "namespace"),
                         display_name=_text(data.get("display_name"), "display_name", DISPLAY_NAME_MAX),
                         description=_text(data.get("description"), "description", DESCRIPTION_MAX),
                         visibility=visibility, protected=_bool(data.get("protected"), "protected"),
                         owner=_text(data.get("owner"), "owner", OWNER_MAX))
    if not with_content:
        return spec
    associations = data.get("resource_type_associations")
    if associations is not None:
        if not isinstance(associations, list):
            raise Invalid("'resource_type_associations' must be an array")
        spec.associations = [association_spec(a) for a in associations]
    objects = data.get("objects")
    if objects is not None:
        if not isinstance(objects, list):
            raise Invalid("'objects' must be an array")
        spec.objects = [object_spec(o) for o in objects]
    if data.get("properties") is not None:
        spec.properties = property_definitions(data["properties"])
    if data.get("tags") is not None:
        spec.tags = tag_names(data["tags"])
    return spec


# --- who may do what ---------------------------------------------------------------------------

def can_read(caller: Caller, namespace: Namespace) -> bool:
    """Public namespaces are everyone's; private ones their project's (and an admin's)."""
    return namespace.visibility == "public" or namespace.owner is None or owns(caller, namespace.owner)


def check_readable(caller: Caller, namespace: Namespace | None, name: str) -> Namespace:
    # An invisible namespace is reported missing, so its existence does not leak.
    if namespace is None or not can_read(caller, namespace):
        raise NotFound(f"Metadata definition namespace '{name}' was not found", namespace=name)
    return namespace


def require_metadef_admin(caller: Caller, what: str) -> None:
    if not caller.is_admin:
        raise Forbidden(f"Only an administrator may {what}")


def check_deletable(namespace: Namespace, content: str | None = None) -> None:
    """Nothing in a protected namespace is deleted, nor the namespace; unprotect it first."""
    if namespace.protected:
        what = f"its {content}" if content else "it"
        raise Protected(f"Namespace '{namespace.namespace}' is protected: {what} cannot be deleted",
                        namespace=namespace.namespace)


# --- listing -----------------------------------------------------------------------------------

@dataclass
class ListQuery:
    """Sorting and paging of a catalogue list as a caller asks for it; marker is the name of
    the last item seen, no limit the list's default."""
    sort_key: str = "created_at"
    sort_dir: str = "desc"
    marker: str | None = None
    limit: int | None = None

    def validate(self, sort_keys: tuple[str, ...], default_limit: int | None) -> None:
        if self.sort_key not in sort_keys:
            raise Invalid(f"Invalid sort key '{self.sort_key}'; one of {', '.join(sort_keys)}")
        if self.sort_dir not in ("asc", "desc"):
            raise Invalid(f"Invalid sort direction '{self.sort_dir}'")
        self.limit = page_size(self.limit, default_limit)

    @property
    def page(self) -> PageRequest:
        """The page asked for (once validated, the limit is the list's)."""
        return PageRequest(limit=self.limit, marker=self.marker)


@dataclass
class CatalogueQuery:
    """A catalogue list as the repository runs it: by sort_key, items without a value after
    those with one, names breaking ties, the whole order reversed for "desc" (the order of
    the key (value is None, value or "", name)); the page after the item page.marker names."""
    sort_key: str = "created_at"
    sort_dir: str = "desc"
    page: PageRequest = field(default_factory=PageRequest.everything)

    @classmethod
    def of(cls, query: ListQuery, **filters: Any) -> Self:
        """The validated query of a caller, with the filters of the list."""
        return cls(query.sort_key, query.sort_dir, query.page, **filters)


@dataclass
class NamespaceQuery(CatalogueQuery):
    """Which namespaces a list shows. readable_by: a project id (public, unowned and that
    project's namespaces), or None for all; resource_types: only namespaces associated with
    one of them."""
    readable_by: str | None = None
    visibility: str | None = None
    resource_types: list[str] | None = None


def prefixed(content: NamespaceContent, resource_type: str) -> NamespaceContent:
    """The namespace as it applies to one resource type: property names carry its prefix."""
    prefix = next((a.prefix for a in content.associations if a.resource_type == resource_type), None)
    if not prefix:
        return content
    properties = [MetadefProperty(p.id, p.namespace_id, prefix + p.name, p.definition, p.created_at,
                                  p.updated_at) for p in content.properties]
    objects = [MetadefObject(o.id, o.namespace_id, o.name, o.description,
                             None if o.required is None else [prefix + r for r in o.required],
                             None if o.properties is None else {prefix + k: v for k, v in o.properties.items()},
                             o.created_at, o.updated_at) for o in content.objects]
    return NamespaceContent(content.namespace, content.associations, objects, properties, content.tags)
