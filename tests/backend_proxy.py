"""A TCP proxy in front of a backend (the Swift s3api), whose behaviour a test switches:

    forward   pass bytes both ways (the backend as it is)
    stall     accept connections and read what comes, but never answer (a hung server); a
              connection open already stops answering too
    down      refuse: every connection, open or new, is reset (a server that is gone)

stall_on(b"...") switches to stall the moment a client sends those bytes (that request gets no
answer): to hang S3 in the middle of an upload, at its second part (b"partNumber=2").

Used by tests and benchmarks (bench/hostile_backends.py); standard library only.
"""

from __future__ import annotations

import select
import socket
import struct
import threading

FORWARD, STALL, DOWN = "forward", "stall", "down"


class BackendProxy:
    def __init__(self, upstream_host: str, upstream_port: int, mode: str = FORWARD) -> None:
        self.upstream = (upstream_host, upstream_port)
        self.mode = mode
        self._listener = socket.socket()
        self._listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self._listener.bind(("127.0.0.1", 0))
        self._listener.listen(512)
        self.port = self._listener.getsockname()[1]
        self.accepted = 0
        self._trigger: bytes | None = None
        self._closed = False
        self._lock = threading.Lock()
        self._open: set[socket.socket] = set()
        threading.Thread(target=self._accept, name="backend-proxy", daemon=True).start()

    @property
    def endpoint(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def set(self, mode: str) -> None:
        assert mode in (FORWARD, STALL, DOWN)
        self._trigger = None
        self.mode = mode

    def stall_on(self, pattern: bytes) -> None:
        self._trigger = pattern

    def open_connections(self) -> int:
        with self._lock:
            return len(self._open)

    def close(self) -> None:
        self._closed = True
        self._listener.close()
        with self._lock:
            for sock in list(self._open):
                _reset(sock)

    def _accept(self) -> None:
        while not self._closed:
            try:
                client, _ = self._listener.accept()
            except OSError:
                return
            self.accepted += 1
            if self.mode == DOWN:
                _reset(client)
                continue
            with self._lock:
                self._open.add(client)
            threading.Thread(target=self._serve, args=(client,), daemon=True).start()

    def _serve(self, client: socket.socket) -> None:
        upstream: socket.socket | None = None
        try:
            while not self._closed:
                mode = self.mode
                if mode == DOWN:
                    return
                if mode == FORWARD and upstream is None:
                    upstream = socket.create_connection(self.upstream, timeout=10)
                    upstream.settimeout(None)
                watched = [client] + ([upstream] if upstream is not None and mode == FORWARD else [])
                ready, _, _ = select.select(watched, [], [], 0.1)
                for sock in ready:
                    data = sock.recv(1 << 16)
                    if not data:
                        return
                    trigger = self._trigger
                    if trigger is not None and sock is client and trigger in data:
                        self._trigger, self.mode = None, STALL
                    if self.mode != FORWARD:
                        continue             # stalled: swallow what the client sends, answer nothing
                    assert upstream is not None
                    (upstream if sock is client else client).sendall(data)
        except OSError:
            return
        finally:
            with self._lock:
                self._open.discard(client)
            if self.mode == DOWN or self._closed:
                _reset(client)
            else:                   # the other side ended: end this one the same way
                client.close()
            if upstream is not None:
                upstream.close()


def _reset(sock: socket.socket) -> None:
    """Close with a reset (RST), as a server that went away."""
    try:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
    except OSError:
        pass
    sock.close()
