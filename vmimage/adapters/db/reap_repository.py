"""SqlReapRepository: the data waiting for the reaper, claimed by one process at a time."""

from __future__ import annotations

import builtins
from collections.abc import Iterable
from datetime import datetime

from sqlalchemy import Connection, delete, func, insert, select, update

from vmimage.adapters.db.tables import data_to_reap
from vmimage.core.ports import DataToReap

_t = data_to_reap.c


class SqlReapRepository:
    def __init__(self, conn: Connection) -> None:
        self.conn = conn

    def add(self, store: str, key: str, partial: bool, image_id: str | None, now: datetime) -> None:
        self.conn.execute(insert(data_to_reap).values(store=store, key=key, partial=partial, image_id=image_id,
                                                      created_at=now, due_at=now, attempts=0))

    def claim(self, worker: str, now: datetime, lease_until: datetime, limit: int) -> builtins.list[DataToReap]:
        stmt = select(data_to_reap).where(_t.due_at <= now).order_by(_t.due_at, _t.id).limit(limit)
        if self.conn.dialect.name == "postgresql":
            # Several processes reap at once: each takes rows no other claim holds. SQLite
            # has one writer at a time (the write transaction), so it needs nothing more.
            stmt = stmt.with_for_update(skip_locked=True)
        rows = self.conn.execute(stmt).all()
        if rows:
            self.conn.execute(update(data_to_reap).where(_t.id.in_([r.id for r in rows])).values(due_at=lease_until,
                                                                                         claimed_by=worker))
        return [DataToReap(r.id, r.store, r.key, r.partial, r.image_id, r.attempts) for r in rows]

    def done(self, record_id: int) -> None:
        self.conn.execute(delete(data_to_reap).where(_t.id == record_id))

    def postpone(self, record_id: int, until: datetime, attempts: int) -> None:
        self.conn.execute(update(data_to_reap).where(_t.id == record_id)
                          .values(due_at=until, attempts=attempts, claimed_by=None))

    def hasten(self, stores: Iterable[str], now: datetime) -> None:
        names = list(stores)
        if names:
            self.conn.execute(update(data_to_reap).where(_t.store.in_(names), _t.due_at > now).values(due_at=now))

    def claimants(self) -> builtins.set[str]:
        return set(self.conn.execute(select(_t.claimed_by).where(_t.claimed_by.is_not(None)).distinct()).scalars())

    def release(self, workers: Iterable[str], now: datetime) -> None:
        names = list(workers)
        if names:
            self.conn.execute(update(data_to_reap).where(_t.claimed_by.in_(names)).values(due_at=now, claimed_by=None))

    def next_due(self) -> datetime | None:
        return self.conn.execute(select(func.min(_t.due_at))).scalar()

    def count(self) -> int:
        return int(self.conn.execute(select(func.count()).select_from(data_to_reap)).scalar() or 0)
