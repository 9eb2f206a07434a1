"""The RevocationFeed of each database: how a process learns at once that a user, an access key
or a token was revoked through another process (identity/ports.py).

- PostgreSQL: every revocation notifies a channel when it commits (NOTIFY is transactional);
  each process listens on a connection of its own, on a thread, and moves its epoch on at each
  notification. Nothing is asked of the database per request. While the listener is not
  connected the epoch is unknown (nothing remembered is trusted), and each (re)connection
  moves it on, since what happened meanwhile is unknown.
- SQLite: one serving process, and the admin command beside it. The epoch is the row the
  revocation bumped, read at each call on a connection of the calling thread's own: a few
  microseconds (in WAL mode a reader never waits for a writer); a read that would wait
  gives None.
"""

from __future__ import annotations

import logging
import sqlite3
import threading
from pathlib import Path
from urllib.parse import quote

from sqlalchemy import Connection, Engine, text

from vmimage.identity.ports import RevocationFeed

log = logging.getLogger("vmimage")

CHANNEL = "vmimage_revocations"
_EPOCH = "SELECT epoch FROM revocation_epoch WHERE id = 1"


def notify_revocation(conn: Connection) -> None:
    """In the revoking transaction: PostgreSQL tells every listener when it commits."""
    if conn.dialect.name == "postgresql":
        conn.execute(text("SELECT pg_notify(:channel, '')"), {"channel": CHANNEL})


def revocation_feed(engine: Engine) -> RevocationFeed:
    if engine.dialect.name == "postgresql":
        return PostgresRevocations(engine)
    if engine.dialect.name == "sqlite" and engine.url.database and engine.url.database != ":memory:":
        return SqliteRevocations(Path(engine.url.database))
    return UnknownRevocations()


class UnknownRevocations:
    """A database no feed watches: nothing validated is remembered."""

    def epoch(self) -> int | None:
        return None

    def close(self) -> None:
        pass


class SqliteRevocations:
    def __init__(self, path: Path) -> None:
        self._uri = f"file:{quote(str(path.resolve()))}?mode=rw"
        self._mine = threading.local()     # one connection per thread, closed when the thread ends

    def epoch(self) -> int | None:
        try:
            conn = getattr(self._mine, "conn", None)
            if conn is None:
                conn = self._mine.conn = sqlite3.connect(self._uri, uri=True, timeout=0, isolation_level=None,
                                                         check_same_thread=False)
            row = conn.execute(_EPOCH).fetchone()
        except sqlite3.Error:
            return None
        return row[0] if row else None

    def close(self) -> None:
        conn = getattr(self._mine, "conn", None)
        if conn is not None:
            conn.close()
            self._mine.conn = None


class PostgresRevocations:
    # A listener's connection that died without a word is noticed within ~25 s by TCP
    # keepalives; meanwhile no revocation can be written to that server either.
    _KEEPALIVES = {"keepalives": 1, "keepalives_idle": 10, "keepalives_interval": 5, "keepalives_count": 3}

    def __init__(self, engine: Engine) -> None:
        self._engine = engine
        self._epoch = 0
        self._listening = False
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def epoch(self) -> int | None:
        if self._thread is None:
            self._start()      # on first use: only the processes that validate tokens listen
        with self._lock:
            return self._epoch if self._listening else None

    def _start(self) -> None:
        with self._lock:
            if self._thread is None and not self._stop.is_set():
                self._thread = threading.Thread(target=self._listen, name="revocation-listener", daemon=True)
                self._thread.start()

    def _connect(self):
        import psycopg

        cargs, cparams = self._engine.dialect.create_connect_args(self._engine.url)
        return psycopg.connect(*cargs, **{**cparams, **self._KEEPALIVES, "connect_timeout": 10}, autocommit=True)

    def _moved_on(self, listening: bool) -> None:
        with self._lock:
            self._epoch += 1
            self._listening = listening

    def _listen(self) -> None:
        pause = 0.5
        while not self._stop.is_set():
            try:
                with self._connect() as conn:
                    conn.execute(f"LISTEN {CHANNEL}")
                    self._moved_on(listening=True)
                    pause = 0.5
                    while not self._stop.is_set():
                        for _ in conn.notifies(timeout=1.0):
                            self._moved_on(listening=True)
            except Exception as exc:    # noqa: BLE001 - any failure: not listening, try again
                if not self._stop.is_set():
                    log.warning("not listening for revocations (%s); validated tokens are not remembered "
                                "until it listens again", exc)
            self._moved_on(listening=False)
            self._stop.wait(pause)
            pause = min(pause * 2, 10.0)

    def close(self) -> None:
        self._stop.set()
        thread = self._thread
        if thread is not None:
            thread.join(timeout=5)
