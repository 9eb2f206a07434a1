"""SqlInventoryRepository: servers, volumes and snapshots."""

from __future__ import annotations

from dataclasses import asdict

from sqlalchemy import Connection, func, insert, select, update

from vmimage.adapters.db.listing import contains_any_case, fetch_page
from vmimage.adapters.db.sequence import next_seq
from vmimage.adapters.db.tables import servers, snapshots, volumes
from vmimage.core.inventory import (DiskCategory, Server, ServerQuery, ServerStatus, Snapshot, SnapshotStatus, Volume,
                                    VolumeStatus)
from vmimage.core.paging import Page

_LIVE_VOLUME = volumes.c.status != VolumeStatus.DELETED.value


def _volume(row) -> Volume:
    m = dict(row._mapping)
    m["category"], m["status"] = DiskCategory(m["category"]), VolumeStatus(m["status"])
    return Volume(**m)


def _snapshot(row) -> Snapshot:
    m = dict(row._mapping)
    m["status"] = SnapshotStatus(m["status"])
    return Snapshot(**m)


def _values(entity, skip: tuple[str, ...] = ()) -> dict:
    out = {}
    for key, value in asdict(entity).items():
        if key in skip:
            continue
        out[key] = value.value if hasattr(value, "value") else value
    return out


class SqlInventoryRepository:
    def __init__(self, conn: Connection) -> None:
        self.conn = conn

    # servers

    def add_server(self, server: Server) -> None:
        server.seq = next_seq(self.conn, servers)
        self.conn.execute(insert(servers).values(**_values(server, skip=("disks",))))

    def save_server(self, server: Server) -> None:
        self.conn.execute(update(servers).where(servers.c.id == server.id)
                          .values(**_values(server, skip=("disks", "id"))))

    def get_server(self, server_id: str, for_update: bool = False) -> Server | None:
        stmt = select(servers).where(servers.c.id == server_id, servers.c.status != ServerStatus.DELETED.value)
        if for_update:
            stmt = stmt.with_for_update()
        row = self.conn.execute(stmt).first()
        return self._server(row) if row else None

    def _server(self, row) -> Server:
        m = dict(row._mapping)
        m["status"] = ServerStatus(m["status"])
        server = Server(**m)
        server.disks = self.volumes_of(server.id)
        return server

    def list_servers(self, query: ServerQuery) -> Page[Server]:
        stmt = select(servers).where(servers.c.status != ServerStatus.DELETED.value)
        if query.project_id is not None:
            stmt = stmt.where(servers.c.project_id == query.project_id)
        if query.status is not None:
            stmt = stmt.where(servers.c.status == query.status.value)
        if query.name_contains:
            stmt = stmt.where(contains_any_case(servers.c.name, query.name_contains))
        keys = (servers.c.created_at, servers.c.id)
        order = [k.desc() for k in keys] if query.newest_first else [k.asc() for k in keys]
        page = fetch_page(self.conn, stmt, order, query.page)
        return Page([self._server(r) for r in page.items], page.more, page.total)

    def server_ids_where(self, seq: int | None = None, name: str | None = None) -> list[str]:
        """Live servers with this sequence number or exact name."""
        stmt = select(servers.c.id).where(servers.c.status != ServerStatus.DELETED.value)
        stmt = stmt.where(servers.c.seq == seq) if seq is not None else stmt.where(servers.c.name == name)
        return [r[0] for r in self.conn.execute(stmt)]

    def image_in_use(self, image_id: str) -> bool:
        used = self.conn.execute(select(func.count()).select_from(volumes)
                                 .where(volumes.c.image_id == image_id, _LIVE_VOLUME)).scalar_one()
        return used > 0

    # volumes

    def add_volume(self, volume: Volume) -> None:
        volume.seq = next_seq(self.conn, volumes)
        self.conn.execute(insert(volumes).values(**_values(volume)))

    def save_volume(self, volume: Volume) -> None:
        self.conn.execute(update(volumes).where(volumes.c.id == volume.id).values(**_values(volume, skip=("id",))))

    def get_volume(self, volume_id: str, for_update: bool = False) -> Volume | None:
        stmt = select(volumes).where(volumes.c.id == volume_id, _LIVE_VOLUME)
        if for_update:
            stmt = stmt.with_for_update()
        row = self.conn.execute(stmt).first()
        return _volume(row) if row else None

    def volume_ids_where(self, seq: int | None = None, name: str | None = None) -> list[str]:
        """Live volumes with this sequence number or exact name."""
        stmt = select(volumes.c.id).where(_LIVE_VOLUME)
        stmt = stmt.where(volumes.c.seq == seq) if seq is not None else stmt.where(volumes.c.name == name)
        return [r[0] for r in self.conn.execute(stmt)]

    def volumes_of(self, server_id: str) -> list[Volume]:
        rows = self.conn.execute(select(volumes).where(volumes.c.server_id == server_id, _LIVE_VOLUME)
                                 .order_by(volumes.c.device))
        return [_volume(r) for r in rows]

    def list_volumes(self, project_id: str | None) -> list[Volume]:
        stmt = select(volumes).where(_LIVE_VOLUME)
        if project_id is not None:
            stmt = stmt.where(volumes.c.project_id == project_id)
        return [_volume(r) for r in self.conn.execute(stmt.order_by(volumes.c.created_at, volumes.c.id))]

    def snapshot_in_use(self, snapshot_id: str) -> bool:
        return self.conn.execute(select(func.count()).select_from(volumes).where(
            volumes.c.snapshot_id == snapshot_id, _LIVE_VOLUME)).scalar_one() > 0

    # snapshots

    def add_snapshot(self, snapshot: Snapshot) -> None:
        self.conn.execute(insert(snapshots).values(**_values(snapshot)))

    def save_snapshot(self, snapshot: Snapshot) -> None:
        self.conn.execute(update(snapshots).where(snapshots.c.id == snapshot.id)
                          .values(**_values(snapshot, skip=("id",))))

    def get_snapshot(self, snapshot_id: str) -> Snapshot | None:
        row = self.conn.execute(select(snapshots).where(
            snapshots.c.id == snapshot_id, snapshots.c.status != SnapshotStatus.DELETED.value)).first()
        return _snapshot(row) if row else None

    def list_snapshots(self, project_id: str | None) -> list[Snapshot]:
        # One query: a snapshot deleted between listing ids and loading each one is not a None.
        stmt = select(snapshots).where(snapshots.c.status != SnapshotStatus.DELETED.value)
        if project_id is not None:
            stmt = stmt.where(snapshots.c.project_id == project_id)
        return [_snapshot(r) for r in self.conn.execute(stmt.order_by(snapshots.c.created_at))]
