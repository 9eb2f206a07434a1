"""Use cases of the metadata definitions catalog: namespaces and their resource-type
associations, and loading the default catalogue (what a namespace holds: metadef_items.py)."""

from __future__ import annotations

import logging

from vmimage.core.errors import Duplicate, Invalid, NotFound
from vmimage.core.metadefs import (DEFAULT_LIMIT, NAMESPACE_SORT_KEYS, Association, AssociationSpec, ListQuery,
                                   MetadefProperty, Namespace, NamespaceContent, NamespaceQuery, NamespaceSpec,
                                   ResourceType, check_deletable, prefixed, require_metadef_admin)
from vmimage.core.paging import Page
from vmimage.core.policy import Caller
from vmimage.core.ports import UnitOfWork
from vmimage.core.services.deps import Deps
from vmimage.core.services.metadef_items import add_object, add_tag, new_id, readable, writable

log = logging.getLogger(__name__)


# --- namespaces ----------------------------------------------------------------------------------

def list_namespaces(deps: Deps, caller: Caller, query: ListQuery, visibility: str | None = None,
                    resource_types: list[str] | None = None) -> Page[tuple[Namespace, list[Association]]]:
    query.validate(NAMESPACE_SORT_KEYS, DEFAULT_LIMIT)
    if visibility is not None and visibility not in ("public", "private"):
        raise Invalid(f"Invalid visibility '{visibility}'")
    with deps.uow() as uow:
        if query.marker is not None:
            readable(uow, caller, query.marker)     # an invisible marker is a missing namespace
        chosen = uow.metadefs.page_namespaces(NamespaceQuery.of(
            query, readable_by=None if caller.is_admin else caller.project_id, visibility=visibility,
            resource_types=resource_types))
        return Page([(n, uow.metadefs.list_associations(n.id)) for n in chosen], chosen.more)


def _content(uow: UnitOfWork, namespace: Namespace) -> NamespaceContent:
    repo = uow.metadefs
    return NamespaceContent(namespace, repo.list_associations(namespace.id), repo.list_objects(namespace.id),
                            repo.list_properties(namespace.id), repo.list_tags(namespace.id))


def get_namespace(deps: Deps, caller: Caller, name: str, resource_type: str | None = None) -> NamespaceContent:
    with deps.uow() as uow:
        content = _content(uow, readable(uow, caller, name))
    return prefixed(content, resource_type) if resource_type else content


def _fill(uow: UnitOfWork, deps: Deps, namespace: Namespace, spec: NamespaceSpec) -> None:
    """Adds a new namespace's content; a name given twice is a duplicate."""
    now = deps.clock()
    for assoc in spec.associations:
        _add_association(uow, deps, namespace, assoc)
    for obj in spec.objects:
        add_object(uow, deps, namespace, obj)
    for prop_name, definition in spec.properties.items():
        uow.metadefs.add_property(MetadefProperty(new_id(), namespace.id, prop_name, definition, now, now))
    seen: set[str] = set()
    for tag in spec.tags:
        if tag in seen:
            raise Duplicate(f"Tag '{tag}' is given twice", tag=tag)
        seen.add(tag)
        add_tag(uow, deps, namespace, tag)


def _new_namespace(deps: Deps, spec: NamespaceSpec, owner: str | None) -> Namespace:
    now = deps.clock()
    return Namespace(new_id(), spec.namespace, spec.display_name, spec.description,
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
        namespace = writable(uow, caller, name, "modify metadata definition namespaces")
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
        namespace = writable(uow, caller, name, "delete metadata definition namespaces")
        check_deletable(namespace)
        uow.metadefs.delete_namespace(namespace.id)
        uow.commit()


# --- resource types ------------------------------------------------------------------------------

def list_resource_types(deps: Deps, caller: Caller) -> list[ResourceType]:
    with deps.uow() as uow:
        return uow.metadefs.list_resource_types()


def list_associations(deps: Deps, caller: Caller, ns: str) -> list[Association]:
    with deps.uow() as uow:
        return uow.metadefs.list_associations(readable(uow, caller, ns).id)


def _add_association(uow: UnitOfWork, deps: Deps, namespace: Namespace, spec: AssociationSpec) -> Association:
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
        namespace = writable(uow, caller, ns, "associate resource types with namespaces")
        assoc = _add_association(uow, deps, namespace, spec)
        uow.commit()
    return assoc


def dissociate(deps: Deps, caller: Caller, ns: str, resource_type: str) -> None:
    with deps.uow(write=True) as uow:
        namespace = writable(uow, caller, ns, "remove resource type associations")
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
        present = {n.namespace for n in uow.metadefs.page_namespaces(NamespaceQuery())}
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
