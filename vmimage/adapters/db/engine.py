"""Engine construction and schema migration (SQLite by default, PostgreSQL for scale-out)."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from alembic import command
from alembic.config import Config
from sqlalchemy import Engine, create_engine, event, text

_HERE = Path(__file__).parent


def make_engine(url: str) -> Engine:
    if url.startswith("sqlite"):
        engine = create_engine(url, connect_args={"timeout": 60, "check_same_thread": False},
                               pool_size=16, max_overflow=16)
        _tune_sqlite(engine)
        return engine
    # No ping before each checkout (a round trip per unit of work): a connection the server
    # dropped fails its unit of work with BackendUnavailable, and the pool then replaces every
    # connection older than the failure.
    return create_engine(url, pool_size=16, max_overflow=16, pool_use_lifo=True)


def _tune_sqlite(engine: Engine) -> None:
    @event.listens_for(engine, "connect")
    def _on_connect(dbapi_conn, _record) -> None:
        dbapi_conn.isolation_level = None  # we issue BEGIN ourselves, below
        cur = dbapi_conn.cursor()
        cur.execute("PRAGMA journal_mode=WAL")
        cur.execute("PRAGMA synchronous=FULL")  # an acknowledged commit survives power loss
        cur.execute("PRAGMA foreign_keys=ON")
        cur.execute("PRAGMA secure_delete=ON")   # what a row held before an update is zeroed, not left in free space
        cur.execute("PRAGMA busy_timeout=60000")
        cur.close()

    @event.listens_for(engine, "begin")
    def _on_begin(conn) -> None:
        # Writers take the lock up front, so read-then-write never deadlocks and quota
        # checks are serialised.
        mode = "IMMEDIATE" if conn.get_execution_options().get("vmimage_write") else "DEFERRED"
        conn.exec_driver_sql(f"BEGIN {mode}")


def sqlite_files(engine: Engine) -> list[Path]:
    """The SQLite database file and its -wal and -shm companions (none for other databases)."""
    if engine.dialect.name != "sqlite" or not engine.url.database or engine.url.database == ":memory:":
        return []
    db = Path(engine.url.database)
    return [db, db.with_name(db.name + "-wal"), db.with_name(db.name + "-shm")]


def forget_old_versions(engine: Engine) -> None:
    """SQLite: fold the write-ahead log into the database and empty it, so rows rewritten
    (secrets sealed) leave no earlier version in the -wal file."""
    if engine.dialect.name == "sqlite":
        with engine.connect() as conn:
            conn.exec_driver_sql("PRAGMA wal_checkpoint(TRUNCATE)")


def alembic_config(url: str) -> Config:
    cfg = Config()
    cfg.set_main_option("script_location", str(_HERE / "migrations"))
    cfg.set_main_option("sqlalchemy.url", url.replace("%", "%%"))
    return cfg


def upgrade_schema(engine: Engine) -> None:
    cfg = alembic_config(engine.url.render_as_string(hide_password=False))
    with engine.begin() as conn:
        cfg.attributes["connection"] = conn
        command.upgrade(cfg, "head")


_STARTUP_LOCK = 0x766D696D   # "vmim": one PostgreSQL advisory lock for start-up work


@contextmanager
def startup_lock(engine: Engine) -> Iterator[None]:
    """Serialise start-up work (migrations, seed data, the bootstrap admin) between processes
    that start together on one PostgreSQL database; SQLite has one process."""
    if engine.dialect.name != "postgresql":
        yield
        return
    with engine.connect() as conn:
        conn.execute(text("SELECT pg_advisory_lock(:k)"), {"k": _STARTUP_LOCK})
        conn.commit()
        try:
            yield
        finally:
            conn.execute(text("SELECT pg_advisory_unlock(:k)"), {"k": _STARTUP_LOCK})
            conn.commit()
