"""A transaction per use case: rolls back unless the caller commits."""

from __future__ import annotations

import threading
from types import TracebackType

from sqlalchemy import Engine
from sqlalchemy.exc import DataError, IntegrityError, OperationalError

from vmimage.adapters.db.audit_repository import SqlAuditRepository
from vmimage.adapters.db.bucket_repository import SqlBucketGrantRepository
from vmimage.adapters.db.identity_repository import SqlIdentityRepository
from vmimage.adapters.db.image_repository import SqlImageRepository
from vmimage.adapters.db.inventory_repository import SqlInventoryRepository
from vmimage.adapters.db.job_repository import SqlJobRepository
from vmimage.adapters.db.metadef_repository import SqlMetadefRepository
from vmimage.adapters.db.nonce_repository import SqlNonceRepository
from vmimage.adapters.db.reap_repository import SqlReapRepository
from vmimage.adapters.db.upload_repository import SqlUploadRepository
from vmimage.core.audit import AuditRepository
from vmimage.core.errors import BackendUnavailable, Duplicate, Invalid
from vmimage.core.ports import (BucketGrantRepository, ImageRepository, InventoryRepository, JobRepository,
                                MetadefRepository, NonceRepository, ReapRepository, UploadRepository)
from vmimage.identity.ports import IdentityRepository


class SqlUnitOfWork:
    """The core's UnitOfWork and the identity service's IdentityUnitOfWork; each repository is
    typed as its port, so mypy checks here that the SQL one provides it."""

    def __init__(self, engine: Engine, write: bool, write_lock: threading.RLock | None = None) -> None:
        self._engine, self._write = engine, write
        self._lock = write_lock if write else None

    def __enter__(self) -> "SqlUnitOfWork":
        if self._lock is not None:
            self._lock.acquire()
        try:
            self.conn = self._engine.connect().execution_options(vmimage_write=self._write)
            self._tx = self.conn.begin()
        except BaseException:
            if self._lock is not None:
                self._lock.release()
            raise
        self.images: ImageRepository = SqlImageRepository(self.conn)
        self.identity: IdentityRepository = SqlIdentityRepository(self.conn)
        self.inventory: InventoryRepository = SqlInventoryRepository(self.conn)
        self.jobs: JobRepository = SqlJobRepository(self.conn)
        self.metadefs: MetadefRepository = SqlMetadefRepository(self.conn)
        self.nonces: NonceRepository = SqlNonceRepository(self.conn)
        self.buckets: BucketGrantRepository = SqlBucketGrantRepository(self.conn)
        self.uploads: UploadRepository = SqlUploadRepository(self.conn)
        self.reaps: ReapRepository = SqlReapRepository(self.conn)
        self.audit: AuditRepository = SqlAuditRepository(self.conn)
        return self

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                 tb: TracebackType | None) -> None:
        try:
            if self._tx.is_active:
                self._tx.rollback()
        finally:
            try:
                self.conn.close()
            finally:
                if self._lock is not None:
                    self._lock.release()
        # Driver errors stop here; the core sees only its own.
        if isinstance(exc, IntegrityError):
            raise Duplicate("The entity conflicts with an existing one") from exc
        if isinstance(exc, OperationalError):
            raise BackendUnavailable("The database is not available") from exc
        # A value the database cannot hold: a NUL character in text (PostgreSQL), an integer
        # past the column's range (PostgreSQL's DataError, SQLite's OverflowError), text that
        # is not Unicode (a lone surrogate: the driver cannot encode it; the faces refuse it
        # first, this is the last line).
        if isinstance(exc, (DataError, OverflowError, UnicodeEncodeError)):
            raise Invalid("A value in the request cannot be stored: out of range, with a NUL character, "
                          "or not Unicode") from exc

    def commit(self) -> None:
        self._tx.commit()


class SqlUnitOfWorkFactory:
    def __init__(self, engine: Engine) -> None:
        self.engine = engine
        # SQLite has one writer at a time (BEGIN IMMEDIATE). Its busy handler waits by
        # sleeping and polling, which under contention costs throughput and puts tens to
        # hundreds of milliseconds on the tail; this process's writers queue on a lock
        # instead and get the database the moment it is free. Other processes (several
        # workers) still meet at SQLite's lock with its busy timeout, as before.
        self._write_lock = threading.RLock() if engine.dialect.name == "sqlite" else None

    def __call__(self, write: bool = False) -> SqlUnitOfWork:
        return SqlUnitOfWork(self.engine, write, self._write_lock)
