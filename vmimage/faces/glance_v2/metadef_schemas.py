"""The JSON schemas Glance publishes under /v2/schemas/metadefs/{name} (the same documents, so
clients that validate against them or render forms from them keep working)."""

from __future__ import annotations

from typing import Any

from vmimage.core.metadefs import DESCRIPTION_MAX, DISPLAY_NAME_MAX, NAME_MAX, OWNER_MAX, PROPERTY_TYPES, VISIBILITIES

_TYPES = [*PROPERTY_TYPES, None]
_STRING = {"type": "string"}


def _date(what: str) -> dict[str, Any]:
    return {"type": "string", "description": f"Date and time of {what} (READ-ONLY)", "format": "date-time"}


def _definitions(string_array_min_items: bool = False) -> dict[str, Any]:
    string_array: dict[str, Any] = {"type": "array", "items": {"type": "string"}, "uniqueItems": True}
    if string_array_min_items:
        string_array["minItems"] = 1
    return {
        "positiveInteger": {"type": "integer", "minimum": 0},
        "positiveIntegerDefault0": {"allOf": [{"$ref": "#/definitions/positiveInteger"}, {"default": 0}]},
        "stringArray": string_array,
        "property": {"type": "object", "additionalProperties": {
            "type": "object", "required": ["title", "type"], "properties": _property_fields()}},
    }


def _property_fields() -> dict[str, Any]:
    return {
        "name": {"type": "string", "maxLength": NAME_MAX},
        "title": _STRING,
        "description": _STRING,
        "operators": {"type": "array", "items": _STRING},
        "type": {"type": "string", "enum": _TYPES},
        "required": {"$ref": "#/definitions/stringArray"},
        "minimum": {"type": "number"},
        "maximum": {"type": "number"},
        "maxLength": {"$ref": "#/definitions/positiveInteger"},
        "minLength": {"$ref": "#/definitions/positiveIntegerDefault0"},
        "pattern": {"type": "string", "format": "regex"},
        "enum": {"type": "array"},
        "readonly": {"type": "boolean"},
        "default": {},
        "items": {"type": "object", "properties": {"type": {"type": "string", "enum": _TYPES},
                                                   "enum": {"type": "array"}}},
        "maxItems": {"$ref": "#/definitions/positiveInteger"},
        "minItems": {"$ref": "#/definitions/positiveIntegerDefault0"},
        "uniqueItems": {"type": "boolean", "default": False},
        "additionalItems": {"type": "boolean"},
    }


def _schema(name: str, properties: dict[str, Any], required: list[str] | None = None,
            definitions: dict[str, Any] | None = None) -> dict[str, Any]:
    out: dict[str, Any] = {"name": name, "properties": properties, "additionalProperties": False}
    if definitions:
        out["definitions"] = definitions
    if required:
        out["required"] = required
    return out


_LINKS = [{"rel": "first", "href": "{first}"}, {"rel": "next", "href": "{next}"},
          {"rel": "describedby", "href": "{schema}"}]


def _collection(name: str, item: dict[str, Any], as_dict: bool = False) -> dict[str, Any]:
    """A list of items (or a dictionary of them, for properties); the item's definitions move up."""
    item = dict(item)
    definitions = item.pop("definitions", None)
    holder = ({"type": "object", "additionalProperties": item} if as_dict
              else {"type": "array", "items": item})
    out: dict[str, Any] = {"name": name, "properties": {name: holder, "first": _STRING, "next": _STRING,
                                                       "schema": _STRING},
                           "links": _LINKS}
    if definitions:
        out["definitions"] = definitions
    return out


def namespace_schema() -> dict[str, Any]:
    return _schema("namespace", {
        "namespace": {"type": "string", "description": "The unique namespace text.", "maxLength": NAME_MAX},
        "display_name": {"type": "string", "maxLength": DISPLAY_NAME_MAX,
                         "description": "The user friendly name for the namespace. Used by UI if available."},
        "description": {"type": "string", "maxLength": DESCRIPTION_MAX,
                        "description": "Provides a user friendly description of the namespace."},
        "visibility": {"type": "string", "description": "Scope of namespace accessibility.",
                       "enum": list(VISIBILITIES)},
        "protected": {"type": "boolean", "description": "If true, namespace will not be deletable."},
        "owner": {"type": "string", "description": "Owner of the namespace.", "maxLength": OWNER_MAX},
        "created_at": _date("namespace creation"),
        "updated_at": _date("the last namespace modification"),
        "schema": _STRING,
        "self": _STRING,
        "resource_type_associations": {"type": "array", "items": {"type": "object", "properties": {
            "name": _STRING, "prefix": _STRING, "properties_target": _STRING}}},
        "properties": {"$ref": "#/definitions/property"},
        "objects": {"type": "array", "items": {"type": "object", "properties": {
            "name": _STRING, "description": _STRING, "required": {"$ref": "#/definitions/stringArray"},
            "properties": {"$ref": "#/definitions/property"}}}},
        "tags": {"type": "array", "items": {"type": "object", "properties": {"name": _STRING}}},
    }, required=["namespace"], definitions=_definitions())


def object_schema() -> dict[str, Any]:
    return _schema("object", {
        "name": {"type": "string", "maxLength": NAME_MAX},
        "description": _STRING,
        "required": {"$ref": "#/definitions/stringArray"},
        "properties": {"$ref": "#/definitions/property"},
        "schema": {"type": "string", "readOnly": True},
        "self": {"type": "string", "readOnly": True},
        "created_at": _date("object creation"),
        "updated_at": _date("the last object modification"),
    }, required=["name"], definitions=_definitions())


def property_schema(name_required: bool = True) -> dict[str, Any]:
    definitions = _definitions(string_array_min_items=True)
    del definitions["property"]
    required = ["type", "title", "name"] if name_required else ["type", "title"]
    return _schema("property", _property_fields(), required=required, definitions=definitions)


def tag_schema() -> dict[str, Any]:
    return _schema("tag", {
        "name": {"type": "string", "maxLength": NAME_MAX},
        "created_at": {**_date("tag creation"), "readOnly": True},
        "updated_at": {**_date("the last tag modification"), "readOnly": True},
    }, required=["name"])


def resource_type_schema() -> dict[str, Any]:
    return _schema("resource_type_association", {
        "name": {"type": "string", "maxLength": NAME_MAX,
                 "description": "Resource type names should be aligned with Heat resource types whenever "
                                "possible: https://docs.openstack.org/heat/latest/template_guide/openstack.html"},
        "prefix": {"type": "string", "maxLength": NAME_MAX,
                   "description": "Specifies the prefix to use for the given resource type. Any properties in the "
                                  "namespace should be prefixed with this prefix when being applied to the "
                                  "specified resource type. Must include prefix separator (e.g. a colon :)."},
        "properties_target": {"type": "string", "maxLength": NAME_MAX,
                              "description": "Some resource types allow more than one key / value pair per "
                                             "instance. For example, Cinder allows user and image metadata on "
                                             "volumes. Only the image properties metadata is evaluated by Nova "
                                             "(scheduling or drivers). This property allows a namespace target "
                                             "to remove the ambiguity."},
        "created_at": _date("resource type association"),
        "updated_at": _date("the last resource type association modification"),
    }, required=["name"])


METADEF_SCHEMAS = {
    "namespace": namespace_schema,
    "namespaces": lambda: _collection("namespaces", namespace_schema()),
    "object": object_schema,
    "objects": lambda: _collection("objects", object_schema()),
    "property": property_schema,
    "properties": lambda: _collection("properties", property_schema(name_required=False), as_dict=True),
    "tag": tag_schema,
    "tags": lambda: _collection("tags", tag_schema()),
    "resource_type": resource_type_schema,
    "resource_types": lambda: _collection("resource_type_associations", resource_type_schema()),
}
