"""SqlMetadefRepository: the metadata definitions catalog (namespaces and their content)."""

from __future__ import annotations

import json
from dataclasses import asdict
from typing import Any

from sqlalchemy import Column, ColumnElement, Connection, Row, Select, String, Table, case, delete, func, insert, \
    or_, select, tuple_, update

from vmimage.adapters.db.listing import fetch_page
from vmimage.adapters.db.tables import (metadef_namespace_resource_types, metadef_namespaces, metadef_objects,
                                        metadef_properties, metadef_resource_types, metadef_tags)
from vmimage.core.errors import NotFound
from vmimage.core.metadefs import (Association, CatalogueQuery, MetadefObject, MetadefProperty, MetadefTag,
                                   Namespace, NamespaceQuery, ResourceType)
from vmimage.core.paging import Page

_assoc = metadef_namespace_resource_types


def _dump(value) -> str | None:
    return None if value is None else json.dumps(value, sort_keys=True)


def _load(text: str | None):
    return None if text is None else json.loads(text)


def _object(row) -> MetadefObject:
    m = dict(row._mapping)
    m["required"], m["properties"] = _load(m["required"]), _load(m["properties"])
    return MetadefObject(**m)


def _property(row) -> MetadefProperty:
    m = dict(row._mapping)
    m["definition"] = _load(m["definition"])
    return MetadefProperty(**m)


def _association(row) -> Association:
    return Association(**row._mapping)


class SqlMetadefRepository:
    def __init__(self, conn: Connection) -> None:
        self.conn = conn

    # namespaces

    def get_namespace(self, name: str, for_update: bool = False) -> Namespace | None:
        stmt = select(metadef_namespaces).where(metadef_namespaces.c.namespace == name)
        if for_update:
            stmt = stmt.with_for_update()
        row = self.conn.execute(stmt).first()
        return Namespace(**row._mapping) if row else None

    def page_namespaces(self, query: NamespaceQuery) -> Page[Namespace]:
        ns = metadef_namespaces
        stmt = select(ns)
        if query.readable_by is not None:
            stmt = stmt.where(or_(ns.c.visibility == "public", ns.c.owner.is_(None),
                                  ns.c.owner == query.readable_by))
        if query.visibility is not None:
            stmt = stmt.where(ns.c.visibility == query.visibility)
        if query.resource_types:
            stmt = stmt.where(ns.c.id.in_(select(_assoc.c.namespace_id)
                                          .where(_assoc.c.resource_type.in_(query.resource_types))))
        page = self._sorted_page(stmt, ns, ns.c.namespace, query)
        return Page([Namespace(**r._mapping) for r in page], page.more, page.total)

    def add_namespace(self, namespace: Namespace) -> None:
        self.conn.execute(insert(metadef_namespaces).values(**asdict(namespace)))

    def save_namespace(self, namespace: Namespace) -> None:
        values = asdict(namespace)
        del values["id"]
        self.conn.execute(update(metadef_namespaces).where(metadef_namespaces.c.id == namespace.id)
                          .values(**values))

    def delete_namespace(self, namespace_id: str) -> None:
        # Children first, explicitly: the same outcome whether or not the connection enforces
        # foreign keys (SQLite's ON DELETE CASCADE depends on a pragma).
        for table in (metadef_objects, metadef_properties, metadef_tags, _assoc):
            self._delete_children(table, namespace_id)
        self.conn.execute(delete(metadef_namespaces).where(metadef_namespaces.c.id == namespace_id))

    def _delete_children(self, table: Table, namespace_id: str) -> None:
        self.conn.execute(delete(table).where(table.c.namespace_id == namespace_id))

    def _text_order(self, expr: ColumnElement[Any]) -> ColumnElement[Any]:
        # Text in code point order on every database, as Python compares strings: SQLite's
        # default (BINARY) does; PostgreSQL's follows the database's locale unless told.
        if isinstance(expr.type, String) and self.conn.dialect.name == "postgresql":
            return expr.collate("C")
        return expr

    def _sort_keys(self, col: Column[Any], name: Column[Any]) -> list[ColumnElement[Any]]:
        """The catalogue's order (CatalogueQuery) as expressions: whether the value is missing
        (only a column that can miss it), the value, the name."""
        keys: list[ColumnElement[Any]] = []
        if col.nullable:
            keys += [case((col.is_(None), 1), else_=0), self._text_order(func.coalesce(col, ""))]
        else:
            keys.append(self._text_order(col))
        if col is not name:
            keys.append(self._text_order(name))
        return keys

    def _sorted_page(self, matches: Select[Any], table: Table, name: Column[Any],
                     query: CatalogueQuery) -> Page[Row[Any]]:
        """The page of `matches` in the query's order, after the row named by the marker."""
        keys = self._sort_keys(table.c[query.sort_key], name)
        ascending = query.sort_dir == "asc"
        after = None
        if query.page.marker is not None:
            marker = self.conn.execute(matches.with_only_columns(*keys)
                                       .where(name == query.page.marker)).first()
            if marker is None:
                raise NotFound(f"Marker '{query.page.marker}' was not found")
            # One direction for every key: a row-value comparison says "after the marker".
            after = tuple_(*keys) > tuple_(*marker) if ascending else tuple_(*keys) < tuple_(*marker)
        order = [k.asc() if ascending else k.desc() for k in keys]
        return fetch_page(self.conn, matches, order, query.page, after)

    def _child_page(self, table: Table, namespace_id: str, query: CatalogueQuery) -> Page[Row[Any]]:
        return self._sorted_page(select(table).where(table.c.namespace_id == namespace_id), table,
                                 table.c.name, query)

    def _children(self, table: Table, namespace_id: str):
        return self.conn.execute(select(table).where(table.c.namespace_id == namespace_id)
                                 .order_by(table.c.created_at, table.c.name))

    def _child(self, table: Table, namespace_id: str, name: str):
        return self.conn.execute(select(table).where(table.c.namespace_id == namespace_id,
                                                     table.c.name == name)).first()

    def _save_child(self, table: Table, values: dict) -> None:
        child_id = values.pop("id")
        self.conn.execute(update(table).where(table.c.id == child_id).values(**values))

    # objects

    def list_objects(self, namespace_id: str) -> list[MetadefObject]:
        return [_object(r) for r in self._children(metadef_objects, namespace_id)]

    def page_objects(self, namespace_id: str, query: CatalogueQuery) -> Page[MetadefObject]:
        page = self._child_page(metadef_objects, namespace_id, query)
        return Page([_object(r) for r in page], page.more, page.total)

    def get_object(self, namespace_id: str, name: str) -> MetadefObject | None:
        row = self._child(metadef_objects, namespace_id, name)
        return _object(row) if row else None

    def _object_values(self, obj: MetadefObject) -> dict:
        values = asdict(obj)
        values["required"], values["properties"] = _dump(obj.required), _dump(obj.properties)
        return values

    def add_object(self, obj: MetadefObject) -> None:
        self.conn.execute(insert(metadef_objects).values(**self._object_values(obj)))

    def save_object(self, obj: MetadefObject) -> None:
        self._save_child(metadef_objects, self._object_values(obj))

    def delete_object(self, object_id: str) -> None:
        self.conn.execute(delete(metadef_objects).where(metadef_objects.c.id == object_id))

    def delete_objects(self, namespace_id: str) -> None:
        self._delete_children(metadef_objects, namespace_id)

    # properties

    def list_properties(self, namespace_id: str) -> list[MetadefProperty]:
        return [_property(r) for r in self._children(metadef_properties, namespace_id)]

    def get_property(self, namespace_id: str, name: str) -> MetadefProperty | None:
        row = self._child(metadef_properties, namespace_id, name)
        return _property(row) if row else None

    def _property_values(self, prop: MetadefProperty) -> dict:
        values = asdict(prop)
        values["definition"] = _dump(prop.definition)
        return values

    def add_property(self, prop: MetadefProperty) -> None:
        self.conn.execute(insert(metadef_properties).values(**self._property_values(prop)))

    def save_property(self, prop: MetadefProperty) -> None:
        self._save_child(metadef_properties, self._property_values(prop))

    def delete_property(self, property_id: str) -> None:
        self.conn.execute(delete(metadef_properties).where(metadef_properties.c.id == property_id))

    def delete_properties(self, namespace_id: str) -> None:
        self._delete_children(metadef_properties, namespace_id)

    # tags

    def list_tags(self, namespace_id: str) -> list[MetadefTag]:
        return [MetadefTag(**r._mapping) for r in self._children(metadef_tags, namespace_id)]

    def page_tags(self, namespace_id: str, query: CatalogueQuery) -> Page[MetadefTag]:
        page = self._child_page(metadef_tags, namespace_id, query)
        return Page([MetadefTag(**r._mapping) for r in page], page.more, page.total)

    def get_tag(self, namespace_id: str, name: str) -> MetadefTag | None:
        row = self._child(metadef_tags, namespace_id, name)
        return MetadefTag(**row._mapping) if row else None

    def add_tag(self, tag: MetadefTag) -> None:
        self.conn.execute(insert(metadef_tags).values(**asdict(tag)))

    def save_tag(self, tag: MetadefTag) -> None:
        self._save_child(metadef_tags, asdict(tag))

    def delete_tag(self, tag_id: str) -> None:
        self.conn.execute(delete(metadef_tags).where(metadef_tags.c.id == tag_id))

    def delete_tags(self, namespace_id: str) -> None:
        self._delete_children(metadef_tags, namespace_id)

    # resource types and associations

    def list_resource_types(self) -> list[ResourceType]:
        rt = metadef_resource_types
        return [ResourceType(**r._mapping) for r in self.conn.execute(select(rt).order_by(rt.c.name))]

    def get_resource_type(self, name: str) -> ResourceType | None:
        row = self.conn.execute(select(metadef_resource_types)
                                .where(metadef_resource_types.c.name == name)).first()
        return ResourceType(**row._mapping) if row else None

    def add_resource_type(self, resource_type: ResourceType) -> None:
        self.conn.execute(insert(metadef_resource_types).values(**asdict(resource_type)))

    def list_associations(self, namespace_id: str) -> list[Association]:
        stmt = (select(_assoc).where(_assoc.c.namespace_id == namespace_id)
                .order_by(_assoc.c.created_at, _assoc.c.resource_type))
        return [_association(r) for r in self.conn.execute(stmt)]

    def get_association(self, namespace_id: str, resource_type: str) -> Association | None:
        row = self.conn.execute(select(_assoc).where(_assoc.c.namespace_id == namespace_id,
                                                     _assoc.c.resource_type == resource_type)).first()
        return _association(row) if row else None

    def add_association(self, association: Association) -> None:
        self.conn.execute(insert(_assoc).values(**asdict(association)))

    def delete_association(self, namespace_id: str, resource_type: str) -> None:
        self.conn.execute(delete(_assoc).where(_assoc.c.namespace_id == namespace_id,
                                               _assoc.c.resource_type == resource_type))
