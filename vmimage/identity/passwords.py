"""Password hashing with scrypt (a memory-hard KDF from the standard library), and the bounded
place where password checks run."""

from __future__ import annotations

import asyncio
import base64
import hashlib
import hmac
import math
import os
import secrets
import threading
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from typing import Any, TypeVar

from vmimage.core.errors import TooManyRequests

_N, _R, _P = 2 ** 14, 8, 1      # 128 * N * r = 16 MiB of memory per hash
_T = TypeVar("_T")


def hash_password(password: str) -> str:
    salt = secrets.token_bytes(16)
    digest = hashlib.scrypt(password.encode(), salt=salt, n=_N, r=_R, p=_P, dklen=32)
    b64 = lambda b: base64.b64encode(b).decode()  # noqa: E731
    return f"scrypt${_N}${_R}${_P}${b64(salt)}${b64(digest)}"


def verify_password(password: str, stored: str) -> bool:
    try:
        scheme, n, r, p, salt, digest = stored.split("$")
    except ValueError:
        return False
    if scheme != "scrypt":
        return False
    expected = base64.b64decode(digest)
    got = hashlib.scrypt(password.encode(), salt=base64.b64decode(salt), n=int(n), r=int(r), p=int(p),
                         dklen=len(expected))
    return hmac.compare_digest(got, expected)


def _lower_priority() -> None:
    """Linux keeps a nice value per thread: request handling goes first when a flood of
    guesses keeps these threads busy (best effort elsewhere)."""
    try:
        os.setpriority(os.PRIO_PROCESS, threading.get_native_id(), 10)
    except (AttributeError, OSError):
        pass


class PasswordChecks:
    """Where password checks run: at most `at_once` at a time, on threads of their own.

    A scrypt hash takes 16 MiB and tens of CPU-ms; on the shared thread pool, concurrent
    guesses took memory by the hundred MiB and the threads every other request needs. Here
    they wait in line without a thread (their turn comes in arrival order), a check that
    cannot start within `wait_seconds` is refused (TooManyRequests), and the threads run at
    a lower CPU priority than the rest of the service.
    """

    def __init__(self, at_once: int = 2, wait_seconds: float = 5.0) -> None:
        if at_once < 1:
            raise ValueError("at least one password check must be able to run")
        self.at_once, self.wait_seconds = at_once, wait_seconds
        self._threads = ThreadPoolExecutor(at_once, thread_name_prefix="password-check",
                                           initializer=_lower_priority)

    async def run(self, check: Callable[..., _T], *args: Any) -> _T:
        """check(*args) on a password-check thread once one is free; TooManyRequests when none
        was within wait_seconds. A caller that goes away before its turn takes none."""
        job = self._threads.submit(check, *args)
        answer = asyncio.wrap_future(job)
        try:
            await asyncio.wait({answer}, timeout=self.wait_seconds)
        except asyncio.CancelledError:
            job.cancel()
            raise
        if not answer.done() and job.cancel():      # still in line: it never runs
            # The line was at least wait_seconds long: come back after as long.
            raise TooManyRequests("Too many logins are being checked at once; try again later",
                                  retry_after=max(1, math.ceil(self.wait_seconds)))
        return await answer

    def close(self) -> None:
        self._threads.shutdown(wait=False, cancel_futures=True)
