"""SqlImageRepository: images, their properties, tags, locations and members."""

from __future__ import annotations

import builtins
import json

from collections import defaultdict
from operator import itemgetter
from typing import Any

from sqlalchemy import (BigInteger, BindParameter, ColumnElement, Connection, and_, bindparam, case, delete, exists,
                        false, func, insert, or_, select, text, tuple_, update)
from sqlalchemy.sql.dml import Insert

from vmimage.adapters.db.listing import contains_any_case, fetch_page
from vmimage.adapters.db.sequence import seq_value
from vmimage.adapters.db.tables import (image_locations, image_members, image_properties, image_tags,
                                        images, project_quotas)
from vmimage.core import os_catalogue
from vmimage.core.images import (DEFAULT_ARCHITECTURE, DEFAULT_BOOT_MODE, STATUS_RANK, BootMode, Image, ImageKind,
                                 ImageSource, ImageStatus, Location, MemberStatus, OsFamily, Visibility)
from vmimage.core.listing import ImageQuery, ListScope
from vmimage.core.members import Member
from vmimage.core.paging import Page

_BASE_COLUMNS = [c.name for c in images.columns]
_PG_IDLE = 0      # libpq's PQTRANS_IDLE: connected, no transaction open
# NULLs sort as the lowest value, both in ORDER BY and in marker comparisons.
_NULL_AS = {"name": "", "size": -1, "disk_format": "", "container_format": ""}


# Statements built once, with bound parameters: SQLAlchemy then reuses their cache keys and
# compiled forms, instead of coercing every literal and re-deriving a cache key per call.
_INSERT_IMAGE = insert(images)
_UPDATE_IMAGE = update(images).where(images.c.id == bindparam("b_image_id"))
_GET_IMAGE = select(images).where(images.c.id == bindparam("image_id"))
_GET_IMAGE_FOR_UPDATE = _GET_IMAGE.with_for_update()
_DELETE_CHILDREN = [delete(t).where(t.c.image_id == bindparam("image_id"))
                    for t in (image_properties, image_tags, image_locations)]
_INSERT_PROPERTIES, _INSERT_TAGS, _INSERT_LOCATIONS = (insert(image_properties), insert(image_tags),
                                                       insert(image_locations))
_USAGE = (select(func.count(), func.coalesce(func.sum(images.c.size), 0))
          .where(images.c.owner == bindparam("project_id"), images.c.status != ImageStatus.DELETED.value))
_QUOTA_OVERRIDES = (select(project_quotas.c.resource, project_quotas.c.limit)
                    .where(project_quotas.c.project_id == bindparam("project_id")))
_GET_MEMBER = select(image_members).where(image_members.c.image_id == bindparam("image_id"),
                                          image_members.c.member_id == bindparam("member_id"))


def _sort_expr(key: str):
    col = images.c[key]
    return func.coalesce(col, _NULL_AS[key]) if key in _NULL_AS else col


# Rows of select(images) are unpacked positionally (one C-level itemgetter call) and enums
# are looked up in dicts: several times cheaper than Row._mapping and Enum(value) per field,
# which matters when a page holds 1,000 images. Columns added to the table later are ignored.
_ROW_ORDER = ("id", "owner", "name", "status", "visibility", "protected", "os_hidden", "disk_format",
              "container_format", "min_disk", "min_ram", "size", "virtual_size", "checksum",
              "os_hash_algo", "os_hash_value", "os_version", "architecture", "boot_mode", "kind",
              "source", "source_ref", "description", "created_at", "updated_at", "seq", "ref",
              "os_family", "os_distribution", "parent_id", "device", "volume_type", "iops",
              "os_release", "auto_delete", "region", "insight")
_ROW_FIELDS = itemgetter(*[_BASE_COLUMNS.index(name) for name in _ROW_ORDER])
_STATUS = {e.value: e for e in ImageStatus}
_VISIBILITY = {e.value: e for e in Visibility}
_BOOT_MODE = {e.value: e for e in BootMode}
_KIND = {e.value: e for e in ImageKind}
_SOURCE = {e.value: e for e in ImageSource}
_OS_FAMILY = {e.value: e for e in OsFamily}
_LIVE = images.c.status != ImageStatus.DELETED.value


def _enum(table: dict, cls, value):
    found = table.get(value)
    return found if found is not None else cls(value)   # cls() raises for unknown values


def _row_to_image(row) -> Image:
    (id_, owner, name, status, visibility, protected, os_hidden, disk_format, container_format,
     min_disk, min_ram, size, virtual_size, checksum, os_hash_algo, os_hash_value, os_version,
     architecture, boot_mode, kind, source, source_ref, description, created_at,
     updated_at, seq, ref, os_family, os_distribution, parent_id, device, volume_type, iops,
     os_release, auto_delete, region, insight) = _ROW_FIELDS(row)
    return Image(
        id=id_, owner=owner, name=name, status=_enum(_STATUS, ImageStatus, status),
        visibility=_enum(_VISIBILITY, Visibility, visibility), protected=protected, os_hidden=os_hidden,
        disk_format=disk_format, container_format=container_format,
        min_disk=min_disk, min_ram=min_ram, size=size, virtual_size=virtual_size,
        checksum=checksum, os_hash_algo=os_hash_algo, os_hash_value=os_hash_value,
        os_version=os_version, architecture=architecture,
        boot_mode=_enum(_BOOT_MODE, BootMode, boot_mode) if boot_mode else None,
        kind=_enum(_KIND, ImageKind, kind), source=_enum(_SOURCE, ImageSource, source),
        source_ref=source_ref, description=description, created_at=created_at, updated_at=updated_at,
        seq=seq, ref=ref, os_family=_enum(_OS_FAMILY, OsFamily, os_family) if os_family else None,
        os_distribution=os_distribution, parent_id=parent_id, device=device, volume_type=volume_type, iops=iops,
        os_release=os_release, auto_delete=auto_delete, region=region,
        insight=json.loads(insight) if insight else None,
    )


def _image_values(image: Image) -> dict:
    values = {c: getattr(image, c) for c in _BASE_COLUMNS}
    for key in ("status", "visibility", "kind", "source", "boot_mode", "os_family"):
        v = values[key]
        values[key] = v.value if v is not None else None
    values["insight"] = json.dumps(image.insight) if image.insight is not None else None
    return values


_INSERT_NUMBERED: dict[str, Insert] = {}


def _insert_numbered(conn: Connection) -> Insert:
    """INSERT of an image that takes the next number in the same statement (RETURNING seq)."""
    stmt = _INSERT_NUMBERED.get(conn.dialect.name)
    if stmt is None:
        cols: dict[str, BindParameter[Any]] = {c.name: bindparam(c.name) for c in images.c if c.name != "seq"}
        stmt = insert(images).values(**cols, seq=seq_value(conn, images)).returning(images.c.seq)
        _INSERT_NUMBERED[conn.dialect.name] = stmt
    return stmt


_INSERT_UNLESS_LIMITED: dict[str, tuple[Insert, str, dict]] = {}


def _insert_unless_limited(conn: Connection) -> tuple[Insert, str, dict]:
    """INSERT ... SELECT of a numbered image that selects nothing when the project's limit on
    a resource (its own row in project_quotas, else the default given) is set (>= 0): the
    statement, and its SQL for this dialect with the constants' parameters."""
    found = _INSERT_UNLESS_LIMITED.get(conn.dialect.name)
    if found is None:
        cols = [c for c in images.c if c.name != "seq"]
        params = {c.name: bindparam(c.name, type_=c.type) for c in cols}   # typed: no VALUES to infer from
        limit = func.coalesce(
            select(project_quotas.c.limit).where(project_quotas.c.project_id == params["owner"],
                                                 project_quotas.c.resource == bindparam("limit_resource"))
            .scalar_subquery(),
            bindparam("default_limit", type_=BigInteger))
        rows = select(*params.values(), seq_value(conn, images)).where(limit < 0)
        stmt = insert(images).from_select([*cols, images.c.seq], rows).returning(images.c.seq)
        compiled = stmt.compile(dialect=conn.dialect)
        found = _INSERT_UNLESS_LIMITED[conn.dialect.name] = (stmt, compiled.string, dict(compiled.params))
    return found


class SqlImageRepository:
    def __init__(self, conn: Connection) -> None:
        self.conn = conn

    # --- images -------------------------------------------------------------------------

    def add(self, image: Image) -> None:
        values = _image_values(image)
        del values["seq"]
        image.seq = self.conn.execute(_insert_numbered(self.conn), values).scalar_one()
        self._write_children(image)

    def add_unless_limited(self, image: Image, resource: str, default_limit: int) -> bool:
        values = _image_values(image)
        del values["seq"]
        values["limit_resource"], values["default_limit"] = resource, default_limit
        stmt, sql, constants = _insert_unless_limited(self.conn)
        if self.conn.dialect.name != "postgresql":
            row = self.conn.execute(stmt, values).first()
            return self._added(image, row)
        # PostgreSQL: psycopg adapts every value itself, so the SQL rendered once runs as it is,
        # as driver SQL: SQLAlchemy no longer derives the large statement's cache key and
        # processes its parameters on every create (the values are plain str, int, bool,
        # datetime and None; a tenth of a create's CPU).
        params = {**constants, **values}
        if image.properties or image.tags or image.locations or not self._nothing_sent_yet():
            return self._added(image, self.conn.exec_driver_sql(sql, params).first())
        # One statement is the whole unit of work, and is atomic by itself: it runs in
        # autocommit, without the BEGIN and COMMIT round trips (the unit of work's commit then
        # finds no transaction open, and costs nothing). When it inserts nothing, the
        # connection is as it was, and what follows runs in a transaction as usual.
        dbapi = self.conn.connection.dbapi_connection
        assert dbapi is not None       # checked out: the connection is open
        dbapi.autocommit = True
        try:
            row = self.conn.exec_driver_sql(sql, params).first()
        finally:
            if not dbapi.closed:       # a lost connection is discarded by the pool as it is
                dbapi.autocommit = False
        return self._added(image, row)

    def _added(self, image: Image, row) -> bool:
        if row is None:
            return False
        image.seq = row[0]
        self._write_children(image)
        return True

    def _nothing_sent_yet(self) -> bool:
        """PostgreSQL: this unit of work has not sent a statement yet (no transaction open)."""
        if self.conn.dialect.name != "postgresql":
            return False
        info = getattr(self.conn.connection.dbapi_connection, "info", None)
        return info is not None and info.transaction_status == _PG_IDLE

    def save(self, image: Image) -> None:
        values = _image_values(image)
        del values["id"]
        values["b_image_id"] = image.id
        self.conn.execute(_UPDATE_IMAGE, values)
        for stmt in _DELETE_CHILDREN:
            self.conn.execute(stmt, {"image_id": image.id})
        self._write_children(image)

    def _write_children(self, image: Image) -> None:
        if image.properties:
            self.conn.execute(_INSERT_PROPERTIES, [
                {"image_id": image.id, "name": k, "value": v} for k, v in image.properties.items()])
        if image.tags:
            self.conn.execute(_INSERT_TAGS, [
                {"image_id": image.id, "value": t, "position": i} for i, t in enumerate(image.tags)])
        if image.locations:
            self.conn.execute(_INSERT_LOCATIONS, [
                {"image_id": image.id, "store": loc.store, "key": loc.key, "position": i,
                 "meta": json.dumps(loc.metadata)}
                for i, loc in enumerate(image.locations)])

    def get(self, image_id: str, for_update: bool = False) -> Image | None:
        stmt = _GET_IMAGE_FOR_UPDATE if for_update else _GET_IMAGE
        row = self.conn.execute(stmt, {"image_id": image_id}).first()
        if row is None:
            return None
        return self._hydrate([_row_to_image(row)])[0]

    def _hydrate(self, found: list[Image]) -> list[Image]:
        if not found:
            return found
        by_id = {i.id: i for i in found}
        ids = tuple(by_id)
        # Plain driver SQL with one placeholder per id: for a 1,000-image page this is a
        # fraction of what rendering SQLAlchemy's expanding IN parameter costs. The values
        # are plain strings and integers, so no type processing is lost.
        marks = ", ".join([_placeholder(self.conn)] * len(ids))
        for image_id, name, value in self.conn.exec_driver_sql(
                f"SELECT image_id, name, value FROM image_properties WHERE image_id IN ({marks})", ids):
            by_id[image_id].properties[name] = value
        for image_id, value in self.conn.exec_driver_sql(
                f"SELECT image_id, value FROM image_tags WHERE image_id IN ({marks}) ORDER BY position, value", ids):
            by_id[image_id].tags.add(value)
        locs = defaultdict(list)
        for image_id, store, key, meta in self.conn.exec_driver_sql(
                f"SELECT image_id, store, \"key\", meta FROM image_locations WHERE image_id IN ({marks}) "
                f"ORDER BY position", ids):
            locs[image_id].append(Location(store, key, json.loads(meta) if meta and meta != "{}" else {}))
        for image_id, value in locs.items():
            by_id[image_id].locations = value
        return found

    def get_by_ref(self, ref: str) -> Image | None:
        row = self.conn.execute(select(images.c.id).where(images.c.ref == ref, _LIVE)).first()
        return self.get(row[0]) if row else None

    def get_by_seq(self, seq: int) -> Image | None:
        row = self.conn.execute(select(images.c.id).where(images.c.seq == seq, _LIVE)).first()
        return self.get(row[0]) if row else None

    def ids_named(self, name: str, owner: str | None = None, region: str | None = None) -> list[str]:
        """Live images with exactly this name (of one project, of one region, when given)."""
        stmt = select(images.c.id).where(images.c.name == name, _LIVE)
        if owner is not None:
            stmt = stmt.where(images.c.owner == owner)
        if region is not None:
            stmt = stmt.where(images.c.region == region)
        return [r[0] for r in self.conn.execute(stmt.order_by(images.c.seq))]

    def ids_in_status(self, status) -> list[str]:
        """Every image in this status, of every project."""
        return list(self.conn.execute(select(images.c.id).where(images.c.status == status.value)).scalars())

    def usage(self, project_id: str) -> tuple[int, int]:
        count, total = self.conn.execute(_USAGE, {"project_id": project_id}).one()
        return int(count), int(total)

    def count_in_status(self, project_id: str, statuses) -> int:
        return int(self.conn.execute(select(func.count()).where(
            images.c.owner == project_id, images.c.status.in_([s.value for s in statuses]))).scalar_one())

    def lock_project(self, project_id: str) -> None:
        if self.conn.dialect.name == "postgresql":
            self.conn.execute(text("SELECT pg_advisory_xact_lock(hashtext(:p))"), {"p": project_id})
        # SQLite: write transactions start with BEGIN IMMEDIATE and are already serialised.

    def quota_overrides(self, project_id: str) -> dict[str, int]:
        rows = self.conn.execute(_QUOTA_OVERRIDES, {"project_id": project_id})
        return {r: int(v) for r, v in rows}

    # --- listing ------------------------------------------------------------------------

    def list(self, q: ImageQuery) -> Page[Image]:
        conds = [images.c.status != ImageStatus.DELETED.value, *self._scope(q)]
        conds.append(images.c.os_hidden == (q.os_hidden if q.os_hidden is not None else False))
        for key, value in q.equals.items():
            conds.append(images.c[key] == value)
        for key, values in q.any_of.items():
            conds.append(images.c[key].in_(values))
        for key, part in q.contains.items():
            conds.append(contains_any_case(images.c[key], part))
        for key, value in q.properties.items():
            conds.append(exists().where(image_properties.c.image_id == images.c.id,
                                        image_properties.c.name == key, image_properties.c.value == value))
        for key, value in q.properties_or_absent.items():
            conds.append(~exists().where(image_properties.c.image_id == images.c.id,
                                         image_properties.c.name == key, image_properties.c.value != value))
        for tag in q.tags:
            conds.append(exists().where(image_tags.c.image_id == images.c.id, image_tags.c.value == tag))
        if q.size_min is not None:
            conds.append(images.c.size >= q.size_min)
        if q.size_max is not None:
            conds.append(images.c.size <= q.size_max)
        for tf in q.times:
            col = images.c[tf.field]
            conds.append({"gt": col > tf.value, "gte": col >= tf.value, "eq": col == tf.value,
                          "neq": col != tf.value, "lt": col < tf.value, "lte": col <= tf.value}[tf.op])
        if q.region is not None:
            conds.append(images.c.region == q.region)
        if q.owned is not None:
            conds.append(images.c.owner == q.project_id if q.owned else images.c.owner != q.project_id)
        if q.platform is not None:
            conds.append(_platform_is(q.platform))
        if q.architecture is not None:
            conds.append(_shown_as(images.c.architecture, q.architecture, DEFAULT_ARCHITECTURE))
        if q.boot_mode is not None:
            conds.append(_shown_as(images.c.boot_mode, q.boot_mode, DEFAULT_BOOT_MODE.value))
        if q.machine_statuses is not None:
            conds.append(_machine_rank().in_([STATUS_RANK[s] for s in q.machine_statuses]))
        sort = list(q.sort)
        if "id" not in [k for k, _ in sort]:
            sort.append(("id", sort[-1][1] if sort else "desc"))
        after = None
        if q.page.marker is not None:
            # Only the marker's sort keys are needed: its row, not its children.
            row = self.conn.execute(_GET_IMAGE, {"image_id": q.page.marker}).first()
            if row is not None:
                after = self._after(_row_to_image(row), sort)
        order = [_sort_expr(k).asc() if d == "asc" else _sort_expr(k).desc() for k, d in sort]
        page = fetch_page(self.conn, select(images).where(and_(*conds)), order, q.page, after)
        return Page(self._hydrate([_row_to_image(r) for r in page.items]), page.more, page.total)

    # `list` is the method from here on; builtins.list is the type.
    def _scope(self, q: ImageQuery) -> builtins.list:
        c, p = images.c, q.project_id
        status = None if q.member_status == "all" else q.member_status

        def membership():
            cond = [image_members.c.image_id == c.id, image_members.c.member_id == p]
            if status:
                cond.append(image_members.c.status == status)
            return exists().where(*cond)

        shared = and_(c.visibility == "shared", or_(c.owner == p, membership()))
        if q.scope == ListScope.PUBLIC:
            return [c.visibility == "public"]
        if q.scope == ListScope.COMMUNITY:
            return [c.visibility == "community"]
        if q.scope == ListScope.SHARED:
            return [c.visibility == "shared"] if q.is_admin else [shared]
        if q.scope == ListScope.MEMBER:
            return [c.visibility == "shared", c.owner != p, membership()]
        if q.scope == ListScope.PRIVATE:
            return [c.visibility == "private"] if q.is_admin else [c.visibility == "private", c.owner == p]
        if q.is_admin:
            return []
        if q.scope == ListScope.ALL:
            return [or_(c.owner == p, c.visibility.in_(("public", "community")), shared)]
        return [or_(c.owner == p, c.visibility == "public", shared)]

    @staticmethod
    def _after(marker: Image, sort: builtins.list[tuple[str, str]]):
        """Rows strictly after the marker in the given lexicographic order."""
        if len(sort) > 1 and len({d for _, d in sort}) == 1:
            # One direction: a row-value comparison, which the (created_at, id) index serves
            # as a range (an OR of terms makes PostgreSQL filter row by row).
            left = tuple_(*(_sort_expr(k) for k, _ in sort))
            right = tuple_(*(_value(marker, k) for k, _ in sort))
            return left > right if sort[0][1] == "asc" else left < right
        terms = []
        for i, (key, direction) in enumerate(sort):
            value, expr = _value(marker, key), _sort_expr(key)
            step = expr > value if direction == "asc" else expr < value
            prefix = [_sort_expr(k) == _value(marker, k) for k, _ in sort[:i]]
            terms.append(and_(*prefix, step))
        return or_(*terms) if terms else false()

    # --- members ------------------------------------------------------------------------

    def get_member(self, image_id: str, member_id: str) -> Member | None:
        row = self.conn.execute(_GET_MEMBER, {"image_id": image_id, "member_id": member_id}).first()
        return _row_to_member(row) if row else None

    def list_members(self, image_id: str) -> builtins.list[Member]:
        rows = self.conn.execute(select(image_members).where(image_members.c.image_id == image_id)
                                 .order_by(image_members.c.created_at, image_members.c.member_id))
        return [_row_to_member(r) for r in rows]

    def save_member(self, member: Member) -> None:
        values = {"image_id": member.image_id, "member_id": member.member_id,
                  "status": member.status.value, "created_at": member.created_at,
                  "updated_at": member.updated_at}
        done = self.conn.execute(update(image_members).where(
            image_members.c.image_id == member.image_id,
            image_members.c.member_id == member.member_id).values(**values))
        if done.rowcount == 0:
            self.conn.execute(insert(image_members).values(**values))

    def delete_member(self, image_id: str, member_id: str) -> None:
        self.conn.execute(delete(image_members).where(
            image_members.c.image_id == image_id, image_members.c.member_id == member_id))


_PLACEHOLDERS = {"qmark": "?", "format": "%s", "pyformat": "%s"}


def _placeholder(conn: Connection) -> str:
    return _PLACEHOLDERS[conn.dialect.paramstyle]


def _value(image: Image, key: str):
    value = getattr(image, key)
    value = value.value if hasattr(value, "value") else value
    return _NULL_AS.get(key) if value is None else value


def _shown_as(col: Any, value: str, default: str) -> ColumnElement[bool]:
    """The column shows `value`, unset (NULL or empty) showing as `default`."""
    if not value:
        return false()          # nothing shows as empty
    if value == default:
        return or_(col.is_(None), col == "", col == value)
    return col == value


def _platform_is(platform: str) -> ColumnElement[bool]:
    """platform_of(image) == platform (core/os_catalogue.py), in the same order: a catalogued
    os_version decides; else the os_distribution; else the family (Other Windows/Other Linux)."""
    c = images.c
    uncatalogued = or_(c.os_version.is_(None), c.os_version.not_in(os_catalogue.CATALOGUED_VERSIONS))
    terms: list[ColumnElement[bool]] = []
    versions = os_catalogue.platform_versions(platform)
    if versions:
        terms.append(c.os_version.in_(versions))
    distributions = os_catalogue.platform_distributions(platform)
    if distributions:
        terms.append(and_(uncatalogued, c.os_distribution.in_(distributions)))
    if platform in (os_catalogue.OTHER_WINDOWS_PLATFORM, os_catalogue.OTHER_LINUX_PLATFORM):
        no_distribution = or_(c.os_distribution.is_(None),
                              c.os_distribution.not_in(list(os_catalogue.DISTRIBUTION_PLATFORMS)))
        windows = c.os_family == OsFamily.WINDOWS.value
        family = windows if platform == os_catalogue.OTHER_WINDOWS_PLATFORM else or_(c.os_family.is_(None), ~windows)
        terms.append(and_(uncatalogued, no_distribution, family))
    return or_(*terms) if terms else false()


def _rank(status: Any) -> ColumnElement[int]:
    return case({s.value: rank for s, rank in STATUS_RANK.items()}, value=status, else_=-1)


def _machine_rank() -> ColumnElement[int]:
    """The STATUS_RANK of the image's status combined with its disk images' (the lowest): the
    disks a machine image is shown with (live, not hidden; core/services/machine_images.py)."""
    disk = images.alias("disk")
    lowest_disk = (select(func.min(_rank(disk.c.status)))
                   .where(disk.c.parent_id == images.c.id, disk.c.status != ImageStatus.DELETED.value,
                          disk.c.os_hidden == false())
                   .scalar_subquery())
    own = _rank(images.c.status)
    return case((lowest_disk < own, lowest_disk), else_=own)


def _row_to_member(row) -> Member:
    m = row._mapping
    return Member(m["image_id"], m["member_id"], MemberStatus(m["status"]), m["created_at"], m["updated_at"])
