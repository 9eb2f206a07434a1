"""Use cases of the metadata definitions catalog: namespaces, their objects, properties, tags
and resource-type associations, and loading the default catalogue."""

from __future__ import annotations

import logging
import uuid
from typing import Any

from vmimage.core.errors import Duplicate, Invalid, NotFound
from vmimage.core.metadefs import (CHILD_SORT_KEYS, DEFAULT_LIMIT, NAMESPACE_SORT_KEYS, Association,
                                   AssociationSpec, ListQuery, MetadefObject, MetadefProperty, MetadefTag,
                                   Namespace, NamespaceContent, NamespaceSpec, ObjectSpec, ResourceType,
                                   check_deletable, check_name, check_readable, page, prefixed,
                                   property_definition, require_metadef_admin)
from vmimage.core.policy import Caller
from vmimage.core.services.deps import Deps

log = logging.getLogger(__name__)


def _new_id() -> str:
    return str(uuid.uuid4())


def _readable(uow, caller: Caller, name: str, for_update: bool = False) -> Namespace:
    return check_readable(caller, uow.metadefs.get_namespace(name, for_update=for_update), name)


def _writable(uow, caller: Caller, name: str, what: str) -> Namespace:
    # Visibility first: a namespace the caller cannot see is missing, not forbidden.
    namespace = _readable(uow, caller, name, for_update=True)
    require_metadef_admin(caller, what)
    return namespace


# --- namespaces ----------------------------------------------------------------------------------

def list_namespaces(deps: Deps, caller: Caller, query: ListQuery, visibility: str | None = None,
                    resource_types: list[str] | None = None) -> list[tuple[Namespace, list[Association]]]:
    query.validate(NAMESPACE_SORT_KEYS, DEFAULT_LIMIT)
    if visibility is not None and visibility not in ("public", "private"):
        raise Invalid(f"Invalid visibility '{visibility}'")
    with deps.uow() as uow:
        found = uow.metadefs.list_namespaces(None if caller.is_admin else caller.project_id,
                                             visibility, resource_types)
        if query.marker is not None:
            _readable(uow, caller, query.marker)
        chosen = page(found, query, lambda n: n.namespace)
        return [(n, uow.metadefs.list_associations(n.id)) for n in chosen]


def _content(uow, namespace: Namespace) -> NamespaceContent:
    repo = uow.metadefs
    return NamespaceContent(namespace, repo.list_associations(namespace.id), repo.list_objects(namespace.id),
                            repo.list_properties(namespace.id), repo.list_tags(namespace.id))


def get_namespace(deps: Deps, caller: Caller, name: str, resource_type: str | None = None) -> NamespaceContent:
    with deps.uow() as uow:
        content = _content(uow, _readable(uow, caller, name))
    return prefixed(content, resource_type) if resource_type else content


def _fill(uow, deps: Deps, namespace: Namespace, spec: NamespaceSpec) -> None:
    """Adds a new namespace's content; a name given twice is a duplicate."""
    now = deps.clock()
    for assoc in spec.associations:
        _add_association(uow, deps, namespace, assoc)
    for obj in spec.objects:
        _add_object(uow, deps, namespace, obj)
    for prop_name, definition in spec.properties.items():
        uow.metadefs.add_property(MetadefProperty(_new_id(), namespace.id, prop_name, definition, now, now))
    seen: set[str] = set()
    for tag in spec.tags:
        if tag in seen:
            raise Duplicate(f"Tag '{tag}' is given twice", tag=tag)
        seen.add(tag)
        uow.metadefs.add_tag(MetadefTag(_new_id(), namespace.id, tag, now, now))


def _new_namespace(deps: Deps, spec: NamespaceSpec, owner: str | None) -> Namespace:
    now = deps.clock()
    return Namespace(_new_id(), spec.namespace, spec.display_name, spec.description,
                     spec.visibility or "private", bool(spec.protected), owner, now, now)


def create_namespace(deps: Deps, caller: Caller, spec: NamespaceSpec) -> NamespaceContent:
    require_metadef_admin(caller, "create metadata definition namespaces")
    with deps.uow(write=True) as uow:
        if uow.metadefs.get_namespace(spec.namespace) is not None:
            raise Duplicate(f"Namespace '{spec.namespace}' already exists", namespace=spec.namespace)
        namespace = _new_namespace(deps, spec, spec.owner or caller.project_id)
        uow.metadefs.add_namespace(namespace)
        _fill(uow, deps, namespace, spec)
        content = _content(uow, namespace)
        uow.commit()
    return content


def update_namespace(deps: Deps, caller: Caller, name: str, spec: NamespaceSpec) -> Namespace:
    """Replaces the namespace's own attributes (not its content); what is left out takes its
    creation default, as upstream does."""
    with deps.uow(write=True) as uow:
        namespace = _writable(uow, caller, name, "modify metadata definition namespaces")
        if spec.namespace != name and uow.metadefs.get_namespace(spec.namespace) is not None:
            raise Duplicate(f"Namespace '{spec.namespace}' already exists", namespace=spec.namespace)
        namespace.namespace, namespace.display_name = spec.namespace, spec.display_name
        namespace.description = spec.description
        namespace.visibility = spec.visibility or "private"
        namespace.protected = bool(spec.protected)
        namespace.owner = spec.owner or caller.project_id
        namespace.updated_at = deps.clock()
        uow.metadefs.save_namespace(namespace)
        uow.commit()
    return namespace


def delete_namespace(deps: Deps, caller: Caller, name: str) -> None:
    with deps.uow(write=True) as uow:
        namespace = _writable(uow, caller, name, "delete metadata definition namespaces")
        check_deletable(namespace)
        uow.metadefs.delete_namespace(namespace.id)
        uow.commit()


# --- objects -------------------------------------------------------------------------------------

def _add_object(uow, deps: Deps, namespace: Namespace, spec: ObjectSpec) -> MetadefObject:
    if uow.metadefs.get_object(namespace.id, spec.name) is not None:
        raise Duplicate(f"Object '{spec.name}' already exists in namespace '{namespace.namespace}'",
                        name=spec.name)
    now = deps.clock()
    obj = MetadefObject(_new_id(), namespace.id, spec.name, spec.description, spec.required, spec.properties,
                        now, now)
    uow.metadefs.add_object(obj)
    return obj


def _existing_object(uow, namespace: Namespace, name: str) -> MetadefObject:
    obj = uow.metadefs.get_object(namespace.id, name)
    if obj is None:
        raise NotFound(f"Object '{name}' was not found in namespace '{namespace.namespace}'", name=name)
    return obj


def list_objects(deps: Deps, caller: Caller, ns: str, query: ListQuery | None = None) -> list[MetadefObject]:
    query = query or ListQuery()
    query.validate(CHILD_SORT_KEYS, None)
    with deps.uow() as uow:
        namespace = _readable(uow, caller, ns)
        return page(uow.metadefs.list_objects(namespace.id), query, lambda o: o.name)


def get_object(deps: Deps, caller: Caller, ns: str, name: str) -> MetadefObject:
    with deps.uow() as uow:
        return _existing_object(uow, _readable(uow, caller, ns), name)


def create_object(deps: Deps, caller: Caller, ns: str, spec: ObjectSpec) -> MetadefObject:
    with deps.uow(write=True) as uow:
        namespace = _writable(uow, caller, ns, "create metadata definition objects")
        obj = _add_object(uow, deps, namespace, spec)
        uow.commit()
    return obj


def update_object(deps: Deps, caller: Caller, ns: str, name: str, spec: ObjectSpec) -> MetadefObject:
    """Replaces the object whole (what is left out is cleared), its name included."""
    with deps.uow(write=True) as uow:
        namespace = _writable(uow, caller, ns, "modify metadata definition objects")
        obj = _existing_object(uow, namespace, name)
        if spec.name != name and uow.metadefs.get_object(namespace.id, spec.name) is not None:
            raise Duplicate(f"Object '{spec.name}' already exists in namespace '{ns}'", name=spec.name)
        obj.name, obj.description, obj.required = spec.name, spec.description, spec.required
        obj.properties, obj.updated_at = spec.properties, deps.clock()
        uow.metadefs.save_object(obj)
        uow.commit()
    return obj


def delete_object(deps: Deps, caller: Caller, ns: str, name: str) -> None:
    with deps.uow(write=True) as uow:
        namespace = _writable(uow, caller, ns, "delete metadata definition objects")
        obj = _existing_object(uow, namespace, name)
        check_deletable(namespace, "objects")
        uow.metadefs.delete_object(obj.id)
        uow.commit()


def delete_objects(deps: Deps, caller: Caller, ns: str) -> None:
    with deps.uow(write=True) as uow:
        namespace = _writable(uow, caller, ns, "delete metadata definition objects")
        check_deletable(namespace, "objects")
        uow.metadefs.delete_objects(namespace.id)
        uow.commit()


# --- properties ----------------------------------------------------------------------------------

def _existing_property(uow, namespace: Namespace, name: str) -> MetadefProperty:
    prop = uow.metadefs.get_property(namespace.id, name)
    if prop is None:
        raise NotFound(f"Property '{name}' was not found in namespace '{namespace.namespace}'", name=name)
    return prop


def list_properties(deps: Deps, caller: Caller, ns: str) -> list[MetadefProperty]:
    with deps.uow() as uow:
        return uow.metadefs.list_properties(_readable(uow, caller, ns).id)


def get_property(deps: Deps, caller: Caller, ns: str, name: str,
                 resource_type: str | None = None) -> MetadefProperty:
    """With a resource type, `name` is the prefixed name the resource type uses."""
    with deps.uow() as uow:
        namespace = _readable(uow, caller, ns)
        if resource_type:
            assoc = uow.metadefs.get_association(namespace.id, resource_type)
            if assoc is None:
                raise NotFound(f"Namespace '{ns}' is not associated with resource type '{resource_type}'")
            if not assoc.prefix or not name.startswith(assoc.prefix):
                raise NotFound(f"Property '{name}' does not start with the prefix '{assoc.prefix or ''}' "
                               f"of resource type '{resource_type}'")
            name = name[len(assoc.prefix):]
        return _existing_property(uow, namespace, name)


def create_property(deps: Deps, caller: Caller, ns: str, data: dict[str, Any]) -> MetadefProperty:
    name, definition = property_definition(data)
    with deps.uow(write=True) as uow:
        namespace = _writable(uow, caller, ns, "create metadata definition properties")
        if uow.metadefs.get_property(namespace.id, name) is not None:
            raise Duplicate(f"Property '{name}' already exists in namespace '{ns}'", name=name)
        now = deps.clock()
        prop = MetadefProperty(_new_id(), namespace.id, name, definition, now, now)
        uow.metadefs.add_property(prop)
        uow.commit()
    return prop


def update_property(deps: Deps, caller: Caller, ns: str, name: str, data: dict[str, Any]) -> MetadefProperty:
    new_name, definition = property_definition(data)
    with deps.uow(write=True) as uow:
        namespace = _writable(uow, caller, ns, "modify metadata definition properties")
        prop = _existing_property(uow, namespace, name)
        if new_name != name and uow.metadefs.get_property(namespace.id, new_name) is not None:
            raise Duplicate(f"Property '{new_name}' already exists in namespace '{ns}'", name=new_name)
        prop.name, prop.definition, prop.updated_at = new_name, definition, deps.clock()
        uow.metadefs.save_property(prop)
        uow.commit()
    return prop


def delete_property(deps: Deps, caller: Caller, ns: str, name: str) -> None:
    with deps.uow(write=True) as uow:
        namespace = _writable(uow, caller, ns, "delete metadata definition properties")
        prop = _existing_property(uow, namespace, name)
        check_deletable(namespace, "properties")
        uow.metadefs.delete_property(prop.id)
        uow.commit()


def delete_properties(deps: Deps, caller: Caller, ns: str) -> None:
    with deps.uow(write=True) as uow:
        namespace = _writable(uow, caller, ns, "delete metadata definition properties")
        check_deletable(namespace, "properties")
        uow.metadefs.delete_properties(namespace.id)
        uow.commit()


# --- tags ----------------------------------------------------------------------------------------

def _existing_tag(uow, namespace: Namespace, name: str) -> MetadefTag:
    tag = uow.metadefs.get_tag(namespace.id, name)
    if tag is None:
        raise NotFound(f"Tag '{name}' was not found in namespace '{namespace.namespace}'", name=name)
    return tag


def list_tags(deps: Deps, caller: Caller, ns: str, query: ListQuery | None = None) -> list[MetadefTag]:
    query = query or ListQuery()
    query.validate(CHILD_SORT_KEYS, None)
    with deps.uow() as uow:
        namespace = _readable(uow, caller, ns)
        return page(uow.metadefs.list_tags(namespace.id), query, lambda t: t.name)


def get_tag(deps: Deps, caller: Caller, ns: str, name: str) -> MetadefTag:
    with deps.uow() as uow:
        return _existing_tag(uow, _readable(uow, caller, ns), name)


def _add_tag(uow, deps: Deps, namespace: Namespace, name: str) -> MetadefTag:
    if uow.metadefs.get_tag(namespace.id, name) is not None:
        raise Duplicate(f"Tag '{name}' already exists in namespace '{namespace.namespace}'", tag=name)
    now = deps.clock()
    tag = MetadefTag(_new_id(), namespace.id, name, now, now)
    uow.metadefs.add_tag(tag)
    return tag


def create_tag(deps: Deps, caller: Caller, ns: str, name: str) -> MetadefTag:
    check_name(name, "tag name")
    with deps.uow(write=True) as uow:
        tag = _add_tag(uow, deps, _writable(uow, caller, ns, "create metadata definition tags"), name)
        uow.commit()
    return tag


def create_tags(deps: Deps, caller: Caller, ns: str, names: list[str], append: bool = False) -> list[MetadefTag]:
    """Several tags at once; without append they replace the namespace's tags."""
    if len(set(names)) != len(names):
        raise Duplicate("A tag is given twice")
    with deps.uow(write=True) as uow:
        namespace = _writable(uow, caller, ns, "create metadata definition tags")
        if not append and uow.metadefs.list_tags(namespace.id):
            check_deletable(namespace, "tags")   # replacing them deletes them
            uow.metadefs.delete_tags(namespace.id)
        tags = [_add_tag(uow, deps, namespace, name) for name in names]
        uow.commit()
    return tags


def update_tag(deps: Deps, caller: Caller, ns: str, name: str, new_name: str) -> MetadefTag:
    check_name(new_name, "name")
    with deps.uow(write=True) as uow:
        namespace = _writable(uow, caller, ns, "modify metadata definition tags")
        tag = _existing_tag(uow, namespace, name)
        if new_name != name and uow.metadefs.get_tag(namespace.id, new_name) is not None:
            raise Duplicate(f"Tag '{new_name}' already exists in namespace '{ns}'", tag=new_name)
        tag.name, tag.updated_at = new_name, deps.clock()
        uow.metadefs.save_tag(tag)
        uow.commit()
    return tag


def delete_tag(deps: Deps, caller: Caller, ns: str, name: str) -> None:
    with deps.uow(write=True) as uow:
        namespace = _writable(uow, caller, ns, "delete metadata definition tags")
        tag = _existing_tag(uow, namespace, name)
        check_deletable(namespace, "tags")
        uow.metadefs.delete_tag(tag.id)
        uow.commit()


def delete_tags(deps: Deps, caller: Caller, ns: str) -> None:
    with deps.uow(write=True) as uow:
        namespace = _writable(uow, caller, ns, "delete metadata definition tags")
        check_deletable(namespace, "tags")
        uow.metadefs.delete_tags(namespace.id)
        uow.commit()


# --- resource types ------------------------------------------------------------------------------

def list_resource_types(deps: Deps, caller: Caller) -> list[ResourceType]:
    with deps.uow() as uow:
        return uow.metadefs.list_resource_types()


def list_associations(deps: Deps, caller: Caller, ns: str) -> list[Association]:
    with deps.uow() as uow:
        return uow.metadefs.list_associations(_readable(uow, caller, ns).id)


def _add_association(uow, deps: Deps, namespace: Namespace, spec: AssociationSpec) -> Association:
    now = deps.clock()
    # A resource type comes into being with its first association, as upstream.
    if uow.metadefs.get_resource_type(spec.name) is None:
        uow.metadefs.add_resource_type(ResourceType(spec.name, False, now, now))
    if uow.metadefs.get_association(namespace.id, spec.name) is not None:
        raise Duplicate(f"Namespace '{namespace.namespace}' is already associated with '{spec.name}'",
                        resource_type=spec.name)
    assoc = Association(namespace.id, spec.name, spec.prefix, spec.properties_target, now, now)
    uow.metadefs.add_association(assoc)
    return assoc


def associate(deps: Deps, caller: Caller, ns: str, spec: AssociationSpec) -> Association:
    with deps.uow(write=True) as uow:
        namespace = _writable(uow, caller, ns, "associate resource types with namespaces")
        assoc = _add_association(uow, deps, namespace, spec)
        uow.commit()
    return assoc


def dissociate(deps: Deps, caller: Caller, ns: str, resource_type: str) -> None:
    with deps.uow(write=True) as uow:
        namespace = _writable(uow, caller, ns, "remove resource type associations")
        if uow.metadefs.get_association(namespace.id, resource_type) is None:
            raise NotFound(f"Namespace '{ns}' is not associated with resource type '{resource_type}'",
                           resource_type=resource_type)
        check_deletable(namespace, "resource type associations")
        uow.metadefs.delete_association(namespace.id, resource_type)
        uow.commit()


# --- the default catalogue -----------------------------------------------------------------------

def seed_catalogue(deps: Deps, resource_types: list[str], namespaces: list[NamespaceSpec]) -> int:
    """Adds the resource types and namespaces that are not there yet; returns how many
    namespaces it added. What an administrator changed in an existing namespace stays."""
    added = 0
    with deps.uow() as uow:   # usually all there: then no write transaction at all
        known = {r.name for r in uow.metadefs.list_resource_types()}
        present = {n.namespace for n in uow.metadefs.list_namespaces(None)}
    resource_types = [r for r in resource_types if r not in known]
    namespaces = [n for n in namespaces if n.namespace not in present]
    for name in resource_types:
        try:
            with deps.uow(write=True) as uow:
                if uow.metadefs.get_resource_type(name) is None:
                    now = deps.clock()
                    uow.metadefs.add_resource_type(ResourceType(name, True, now, now))
                    uow.commit()
        except Duplicate:
            pass    # another process seeded it at the same moment
    for spec in namespaces:
        try:
            with deps.uow(write=True) as uow:
                if uow.metadefs.get_namespace(spec.namespace) is not None:
                    continue
                # Unowned: the catalogue belongs to the service, not to a project.
                namespace = _new_namespace(deps, spec, spec.owner)
                uow.metadefs.add_namespace(namespace)
                _fill(uow, deps, namespace, spec)
                uow.commit()
                added += 1
        except Duplicate:
            log.info("metadef namespace %s was added concurrently; kept as it is", spec.namespace)
    return added
