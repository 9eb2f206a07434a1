"""A minimal QMP client: one unix socket, newline-delimited JSON, no third-party library.

QEMU serves one QMP client at a time per socket, so callers open a connection, run a few
commands and close it again; a second client waits (and times out here) until then.
Asynchronous events that arrive while waiting for a reply are kept in `events`.
"""

from __future__ import annotations

import json
import os
import socket
import time
from pathlib import Path
from typing import Any

# sockaddr_un.sun_path holds 108 bytes including the terminating NUL.
SUN_PATH_MAX = 107


class QMPError(Exception):
    """QEMU answered a command with an error."""

    def __init__(self, command: str, error_class: str, desc: str) -> None:
        super().__init__(f"{command}: {error_class}: {desc}")
        self.command, self.error_class, self.desc = command, error_class, desc


class QMPConnectionError(OSError):
    """The socket could not be reached, closed early, timed out or spoke nonsense."""


class QMPClient:
    """A connected QMP session (after the qmp_capabilities handshake); use as a context manager."""

    def __init__(self, path: str | Path, timeout: float = 10.0) -> None:
        self.path = Path(path)
        self.timeout = timeout
        self.events: list[dict[str, Any]] = []
        self.greeting: dict[str, Any] = {}
        self._sock: socket.socket | None = None
        self._buf = b""
        self._next_id = 0

    def __enter__(self) -> "QMPClient":
        self.connect()
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def connect(self) -> None:
        sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        sock.settimeout(self.timeout)
        try:
            _connect_unix(sock, self.path)
        except OSError as exc:
            sock.close()
            raise QMPConnectionError(f"cannot connect to {self.path}: {exc}") from exc
        self._sock = sock
        deadline = time.monotonic() + self.timeout
        try:
            greeting = self._read_message(deadline)
            if "QMP" not in greeting:
                raise QMPConnectionError(f"no QMP greeting on {self.path}: {greeting!r}")
            self.greeting = greeting
            self.execute("qmp_capabilities")
        except BaseException:
            self.close()
            raise

    def close(self) -> None:
        if self._sock is not None:
            try:
                self._sock.close()
            finally:
                self._sock = None
                self._buf = b""

    def execute(self, command: str, arguments: dict[str, Any] | None = None,
                timeout: float | None = None) -> Any:
        """Run one command and return its "return" value; raises QMPError on "error"."""
        if self._sock is None:
            raise QMPConnectionError("not connected")
        self._next_id += 1
        msg_id = f"vmimage-{self._next_id}"
        message: dict[str, Any] = {"execute": command, "id": msg_id}
        if arguments:
            message["arguments"] = arguments
        deadline = time.monotonic() + (self.timeout if timeout is None else timeout)
        try:
            self._sock.sendall(json.dumps(message).encode() + b"\n")
        except OSError as exc:
            raise QMPConnectionError(f"{command}: send failed: {exc}") from exc
        while True:
            reply = self._read_message(deadline)
            if "event" in reply:
                self.events.append(reply)
                continue
            if reply.get("id") != msg_id:
                continue  # a reply to someone else's command cannot happen; ignore it
            if "error" in reply:
                err = reply["error"]
                raise QMPError(command, err.get("class", "GenericError"), err.get("desc", ""))
            return reply.get("return")

    def wait_event(self, name: str, timeout: float) -> dict[str, Any]:
        """The first event called `name` (already received or arriving within timeout)."""
        deadline = time.monotonic() + timeout
        while True:
            for i, event in enumerate(self.events):
                if event.get("event") == name:
                    return self.events.pop(i)
            message = self._read_message(deadline)
            if "event" in message:
                self.events.append(message)

    def _read_message(self, deadline: float) -> dict[str, Any]:
        assert self._sock is not None
        while b"\n" not in self._buf:
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                raise QMPConnectionError(f"timed out waiting for QMP on {self.path}")
            self._sock.settimeout(remaining)
            try:
                chunk = self._sock.recv(65536)
            except (socket.timeout, TimeoutError) as exc:
                raise QMPConnectionError(f"timed out waiting for QMP on {self.path}") from exc
            except OSError as exc:
                raise QMPConnectionError(f"QMP read failed: {exc}") from exc
            if not chunk:
                raise QMPConnectionError(f"QEMU closed the QMP socket {self.path}")
            self._buf += chunk
        line, self._buf = self._buf.split(b"\n", 1)
        try:
            message = json.loads(line)
        except ValueError as exc:
            raise QMPConnectionError(f"bad QMP message: {line[:200]!r}") from exc
        if not isinstance(message, dict):
            raise QMPConnectionError(f"bad QMP message: {line[:200]!r}")
        return message


def _connect_unix(sock: socket.socket, path: Path) -> None:
    """Connect even when the path is longer than sun_path, through a /proc/self/fd directory alias."""
    if len(os.fsencode(path)) <= SUN_PATH_MAX:
        sock.connect(str(path))
        return
    dir_fd = os.open(path.parent, os.O_PATH | os.O_DIRECTORY)
    try:
        sock.connect(f"/proc/self/fd/{dir_fd}/{path.name}")
    finally:
        os.close(dir_fd)
