"""Use cases of what a metadata definitions namespace holds: objects, properties and tags.

The three kinds share one shape (find by name in a namespace, refuse a taken name, delete
one or all while the namespace is not protected); _Kind names what differs."""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from typing import Any

from vmimage.core.errors import Duplicate, NotFound
from vmimage.core.metadefs import (CHILD_SORT_KEYS, CatalogueQuery, ListQuery, MetadefObject, MetadefProperty,
                                   MetadefTag, Namespace, ObjectSpec, check_deletable, check_name, check_readable,
                                   property_definition, require_metadef_admin)
from vmimage.core.paging import Page
from vmimage.core.policy import Caller
from vmimage.core.ports import UnitOfWork
from vmimage.core.services.deps import Deps


def new_id() -> str:
    return str(uuid.uuid4())


def readable(uow: UnitOfWork, caller: Caller, name: str, for_update: bool = False) -> Namespace:
    return check_readable(caller, uow.metadefs.get_namespace(name, for_update=for_update), name)


def writable(uow: UnitOfWork, caller: Caller, name: str, what: str) -> Namespace:
    # Visibility first: a namespace the caller cannot see is missing, not forbidden.
    namespace = readable(uow, caller, name, for_update=True)
    require_metadef_admin(caller, what)
    return namespace


@dataclass(frozen=True)
class _Kind:
    one: str          # repository method suffix and message word: object, property, tag
    many: str         # objects, properties, tags
    field: str        # the error field naming the item

    def get(self, uow: UnitOfWork, namespace: Namespace, name: str):
        return getattr(uow.metadefs, f"get_{self.one}")(namespace.id, name)

    def existing(self, uow: UnitOfWork, namespace: Namespace, name: str):
        item = self.get(uow, namespace, name)
        if item is None:
            raise NotFound(f"{self.one.capitalize()} '{name}' was not found in namespace "
                           f"'{namespace.namespace}'", name=name)
        return item

    def require_free(self, uow: UnitOfWork, namespace: Namespace, name: str, current: str | None = None) -> None:
        if name != current and self.get(uow, namespace, name) is not None:
            raise Duplicate(f"{self.one.capitalize()} '{name}' already exists in namespace "
                            f"'{namespace.namespace}'", **{self.field: name})


OBJECT, PROPERTY, TAG = _Kind("object", "objects", "name"), _Kind("property", "properties", "name"), \
    _Kind("tag", "tags", "tag")


def _delete_one(deps: Deps, caller: Caller, ns: str, kind: _Kind, name: str) -> None:
    with deps.uow(write=True) as uow:
        namespace = writable(uow, caller, ns, f"delete metadata definition {kind.many}")
        item = kind.existing(uow, namespace, name)
        check_deletable(namespace, kind.many)
        getattr(uow.metadefs, f"delete_{kind.one}")(item.id)
        uow.commit()


def _delete_all(deps: Deps, caller: Caller, ns: str, kind: _Kind) -> None:
    with deps.uow(write=True) as uow:
        namespace = writable(uow, caller, ns, f"delete metadata definition {kind.many}")
        check_deletable(namespace, kind.many)
        getattr(uow.metadefs, f"delete_{kind.many}")(namespace.id)
        uow.commit()


def _listed(deps: Deps, caller: Caller, ns: str, kind: _Kind, query: ListQuery | None) -> Page:
    query = query or ListQuery()
    query.validate(CHILD_SORT_KEYS, None)
    with deps.uow() as uow:
        namespace = readable(uow, caller, ns)
        return getattr(uow.metadefs, f"page_{kind.many}")(namespace.id, CatalogueQuery.of(query))


# --- objects -------------------------------------------------------------------------------------

def add_object(uow: UnitOfWork, deps: Deps, namespace: Namespace, spec: ObjectSpec) -> MetadefObject:
    OBJECT.require_free(uow, namespace, spec.name)
    now = deps.clock()
    obj = MetadefObject(new_id(), namespace.id, spec.name, spec.description, spec.required, spec.properties,
                        now, now)
    uow.metadefs.add_object(obj)
    return obj


def list_objects(deps: Deps, caller: Caller, ns: str, query: ListQuery | None = None) -> Page[MetadefObject]:
    return _listed(deps, caller, ns, OBJECT, query)


def get_object(deps: Deps, caller: Caller, ns: str, name: str) -> MetadefObject:
    with deps.uow() as uow:
        return OBJECT.existing(uow, readable(uow, caller, ns), name)


def create_object(deps: Deps, caller: Caller, ns: str, spec: ObjectSpec) -> MetadefObject:
    with deps.uow(write=True) as uow:
        obj = add_object(uow, deps, writable(uow, caller, ns, "create metadata definition objects"), spec)
        uow.commit()
    return obj


def update_object(deps: Deps, caller: Caller, ns: str, name: str, spec: ObjectSpec) -> MetadefObject:
    """Replaces the object whole (what is left out is cleared), its name included."""
    with deps.uow(write=True) as uow:
        namespace = writable(uow, caller, ns, "modify metadata definition objects")
        obj = OBJECT.existing(uow, namespace, name)
        OBJECT.require_free(uow, namespace, spec.name, current=name)
        obj.name, obj.description, obj.required = spec.name, spec.description, spec.required
        obj.properties, obj.updated_at = spec.properties, deps.clock()
        uow.metadefs.save_object(obj)
        uow.commit()
    return obj


def delete_object(deps: Deps, caller: Caller, ns: str, name: str) -> None:
    _delete_one(deps, caller, ns, OBJECT, name)


def delete_objects(deps: Deps, caller: Caller, ns: str) -> None:
    _delete_all(deps, caller, ns, OBJECT)


# --- properties ----------------------------------------------------------------------------------

def list_properties(deps: Deps, caller: Caller, ns: str) -> list[MetadefProperty]:
    with deps.uow() as uow:
        return uow.metadefs.list_properties(readable(uow, caller, ns).id)


def get_property(deps: Deps, caller: Caller, ns: str, name: str,
                 resource_type: str | None = None) -> MetadefProperty:
    """With a resource type, `name` is the prefixed name the resource type uses."""
    with deps.uow() as uow:
        namespace = readable(uow, caller, ns)
        if resource_type:
            assoc = uow.metadefs.get_association(namespace.id, resource_type)
            if assoc is None:
                raise NotFound(f"Namespace '{ns}' is not associated with resource type '{resource_type}'")
            if not assoc.prefix or not name.startswith(assoc.prefix):
                raise NotFound(f"Property '{name}' does not start with the prefix '{assoc.prefix or ''}' "
                               f"of resource type '{resource_type}'")
            name = name[len(assoc.prefix):]
        return PROPERTY.existing(uow, namespace, name)


def create_property(deps: Deps, caller: Caller, ns: str, data: dict[str, Any]) -> MetadefProperty:
    name, definition = property_definition(data)
    with deps.uow(write=True) as uow:
        namespace = writable(uow, caller, ns, "create metadata definition properties")
        PROPERTY.require_free(uow, namespace, name)
        now = deps.clock()
        prop = MetadefProperty(new_id(), namespace.id, name, definition, now, now)
        uow.metadefs.add_property(prop)
        uow.commit()
    return prop


def update_property(deps: Deps, caller: Caller, ns: str, name: str, data: dict[str, Any]) -> MetadefProperty:
    new_name, definition = property_definition(data)
    with deps.uow(write=True) as uow:
        namespace = writable(uow, caller, ns, "modify metadata definition properties")
        prop = PROPERTY.existing(uow, namespace, name)
        PROPERTY.require_free(uow, namespace, new_name, current=name)
        prop.name, prop.definition, prop.updated_at = new_name, definition, deps.clock()
        uow.metadefs.save_property(prop)
        uow.commit()
    return prop


def delete_property(deps: Deps, caller: Caller, ns: str, name: str) -> None:
    _delete_one(deps, caller, ns, PROPERTY, name)


def delete_properties(deps: Deps, caller: Caller, ns: str) -> None:
    _delete_all(deps, caller, ns, PROPERTY)


# --- tags ----------------------------------------------------------------------------------------

def add_tag(uow: UnitOfWork, deps: Deps, namespace: Namespace, name: str) -> MetadefTag:
    TAG.require_free(uow, namespace, name)
    now = deps.clock()
    tag = MetadefTag(new_id(), namespace.id, name, now, now)
    uow.metadefs.add_tag(tag)
    return tag


def list_tags(deps: Deps, caller: Caller, ns: str, query: ListQuery | None = None) -> Page[MetadefTag]:
    return _listed(deps, caller, ns, TAG, query)


def get_tag(deps: Deps, caller: Caller, ns: str, name: str) -> MetadefTag:
    with deps.uow() as uow:
        return TAG.existing(uow, readable(uow, caller, ns), name)


def create_tag(deps: Deps, caller: Caller, ns: str, name: str) -> MetadefTag:
    check_name(name, "tag name")
    with deps.uow(write=True) as uow:
        tag = add_tag(uow, deps, writable(uow, caller, ns, "create metadata definition tags"), name)
        uow.commit()
    return tag


def create_tags(deps: Deps, caller: Caller, ns: str, names: list[str], append: bool = False) -> list[MetadefTag]:
    """Several tags at once; without append they replace the namespace's tags."""
    if len(set(names)) != len(names):
        raise Duplicate("A tag is given twice")
    with deps.uow(write=True) as uow:
        namespace = writable(uow, caller, ns, "create metadata definition tags")
        if not append and uow.metadefs.list_tags(namespace.id):
            check_deletable(namespace, "tags")   # replacing them deletes them
            uow.metadefs.delete_tags(namespace.id)
        tags = [add_tag(uow, deps, namespace, name) for name in names]
        uow.commit()
    return tags


def update_tag(deps: Deps, caller: Caller, ns: str, name: str, new_name: object) -> MetadefTag:
    new_name = check_name(new_name, "name")     # as the caller sent it
    with deps.uow(write=True) as uow:
        namespace = writable(uow, caller, ns, "modify metadata definition tags")
        tag = TAG.existing(uow, namespace, name)
        TAG.require_free(uow, namespace, new_name, current=name)
        tag.name, tag.updated_at = new_name, deps.clock()
        uow.metadefs.save_tag(tag)
        uow.commit()
    return tag


def delete_tag(deps: Deps, caller: Caller, ns: str, name: str) -> None:
    _delete_one(deps, caller, ns, TAG, name)


def delete_tags(deps: Deps, caller: Caller, ns: str) -> None:
    _delete_all(deps, caller, ns, TAG)
