"""A transaction per use case: rolls back unless the caller commits."""

from __future__ import annotations

from sqlalchemy import Engine
from sqlalchemy.exc import IntegrityError, OperationalError

from vmimage.adapters.db.identity_repository import SqlIdentityRepository
from vmimage.adapters.db.image_repository import SqlImageRepository
from vmimage.core.errors import BackendUnavailable, Duplicate


class SqlUnitOfWork:
    def __init__(self, engine: Engine, write: bool) -> None:
        self._engine, self._write = engine, write

    def __enter__(self) -> "SqlUnitOfWork":
        self.conn = self._engine.connect().execution_options(vmimage_write=self._write)
        self._tx = self.conn.begin()
        self.images = SqlImageRepository(self.conn)
        self.identity = SqlIdentityRepository(self.conn)
        return self

    def __exit__(self, exc_type, exc, tb) -> None:
        try:
            if self._tx.is_active:
                self._tx.rollback()
        finally:
            self.conn.close()
        # Driver errors stop here; the core sees only its own.
        if isinstance(exc, IntegrityError):
            raise Duplicate("The entity conflicts with an existing one") from exc
        if isinstance(exc, OperationalError):
            raise BackendUnavailable("The database is not available") from exc

    def commit(self) -> None:
        self._tx.commit()


class SqlUnitOfWorkFactory:
    def __init__(self, engine: Engine) -> None:
        self.engine = engine

    def __call__(self, write: bool = False) -> SqlUnitOfWork:
        return SqlUnitOfWork(self.engine, write)
