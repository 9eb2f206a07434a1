"""The audit trail: who did what to which, when, from where, and how it went.

An event is written by the core where it decides the action, in the action's own transaction
(so it never makes the action fail, nor costs a round trip of its own); failed logins in the
login brake's write. Who and from where come from the request's Origin (set by the face
middleware: the client address and request id) or the admin command's (the OS user, `cli`).
No event ever holds a password, token, signature or secret key: only ids and names."""

from __future__ import annotations

import getpass
import logging
import threading
import time
from collections import OrderedDict
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from dataclasses import dataclass, field, replace
from datetime import datetime, timedelta, timezone
from typing import Any, Protocol

from vmimage.core.errors import Invalid

log = logging.getLogger("vmimage")

# Outcomes
SUCCESS, FAILURE, BRAKED = "success", "failure", "braked"

# Kinds, one per decision the core makes (README lists them).
LOGIN = "login"                                    # failed or braked only
SIGNATURE = "signature"                            # failed only
TOKEN_REVOKE = "token.revoke"
ACCESS_KEY_CREATE, ACCESS_KEY_DISABLE = "access_key.create", "access_key.disable"
ACCESS_KEY_ENABLE, ACCESS_KEY_DELETE = "access_key.enable", "access_key.delete"
USER_DISABLE, USER_ENABLE, USER_DELETE = "user.disable", "user.enable", "user.delete"
ROLE_GRANT, ROLE_REVOKE = "role.grant", "role.revoke"
BUCKET_GRANT, BUCKET_REVOKE = "bucket.grant", "bucket.revoke"
IMAGE_DELETE = "image.delete"
MEMBER_ADD, MEMBER_REMOVE, MEMBER_STATUS = "member.add", "member.remove", "member.status"
IMAGE_VISIBILITY = "image.visibility"

CLI_ADDRESS = "cli"


@dataclass
class Origin:
    """Where the action comes from: the client's address (or `cli`) and request id; the
    user and project once known (a request's caller, the admin command's OS user)."""
    address: str | None = None
    request_id: str | None = None
    user_id: str | None = None
    user_name: str | None = None
    project_id: str | None = None


_origin: ContextVar[Origin | None] = ContextVar("vmimage_audit_origin", default=None)


def set_origin(origin: Origin) -> None:
    _origin.set(origin)


@contextmanager
def origin_of(origin: Origin) -> Iterator[None]:
    """The origin for a while on a thread that outlives it (a job worker's)."""
    token = _origin.set(origin)
    try:
        yield
    finally:
        _origin.reset(token)


def current_origin() -> Origin:
    return _origin.get() or Origin()


def cli_origin() -> Origin:
    """The admin command's: the local OS user, from `cli`."""
    try:
        user = getpass.getuser()
    except (KeyError, OSError):       # no name for this uid (a container)
        user = None
    return Origin(address=CLI_ADDRESS, user_name=user)


def _now() -> datetime:
    return datetime.now(timezone.utc).replace(tzinfo=None)


@dataclass(frozen=True)
class AuditEvent:
    kind: str
    outcome: str
    target: str | None = None         # the id (or name) acted on
    target_project_id: str | None = None
    detail: str | None = None         # a second target or the new value (member id, status, visibility)
    user_id: str | None = None
    user_name: str | None = None
    project_id: str | None = None
    address: str | None = None
    request_id: str | None = None
    at: datetime = field(default_factory=_now)
    id: int | None = None


def event(kind: str, target: str | None = None, *, outcome: str = SUCCESS, target_project_id: str | None = None,
          detail: str | None = None, user_id: str | None = None, project_id: str | None = None,
          user_name: str | None = None, origin: Origin | None = None) -> AuditEvent:
    """An event of the origin (the current one unless given: a thread of a pool of our own
    does not inherit it); a caller's user and project, when given, win over it."""
    origin = origin or current_origin()
    return AuditEvent(kind, outcome, target, target_project_id, detail,
                      user_id=user_id or origin.user_id, user_name=user_name or origin.user_name,
                      project_id=project_id or origin.project_id, address=origin.address,
                      request_id=origin.request_id)


class AuditRepository(Protocol):
    def add(self, event: AuditEvent) -> None: ...
    def recent(self, since: datetime | None = None, project_id: str | None = None, kind: str | None = None,
             limit: int = 100) -> list[AuditEvent]:
        """Newest first; project matches the acting or the target project."""
    def prune(self, before: datetime) -> int:
        """Forget events older than then; how many."""


class RefusalBudget:
    """Events of one kind from one address that record() writes per minute, per process.
    Refusals (wrong signatures, wrong logins below the brake) cost the caller nothing, so
    without a bound an unauthenticated client could make the service write rows at will;
    beyond the budget an address's events are counted, and the count is written as one
    event (detail `not recorded: N`) with its next event in a later minute."""

    def __init__(self, per_minute: int = 60, addresses: int = 10_000,
                 clock: Callable[[], float] = time.monotonic) -> None:
        self.per_minute, self.addresses, self.clock = per_minute, addresses, clock
        self._lock = threading.Lock()
        self._windows: OrderedDict[tuple[str, str | None], list[float | int]] = OrderedDict()

    def admit(self, event: AuditEvent) -> tuple[bool, int]:
        """Whether to write the event, and how many of its key's events went unwritten before."""
        key, now = (event.kind, event.address), self.clock()
        with self._lock:
            window = self._windows.get(key)
            if window is None or now - window[0] >= 60:
                missed = int(window[2]) if window is not None else 0
                window = self._windows[key] = [now, 0, 0]
            else:
                missed = 0
            self._windows.move_to_end(key)
            while len(self._windows) > self.addresses:
                self._windows.popitem(last=False)
            if window[1] >= self.per_minute:
                window[2] += 1
                return False, 0
            window[1] += 1
            return True, missed


REFUSALS = RefusalBudget()


def record(uow: Callable[..., Any], event: AuditEvent, budget: RefusalBudget = REFUSALS) -> None:
    """An event that has no transaction of its own to join (a refused signature), in one small
    write, within the address's budget (above); a failure to write is logged, never raised:
    the trail must not change the answer."""
    admitted, missed = budget.admit(event)
    if not admitted:
        return
    try:
        with uow(write=True) as tx:
            if missed:
                tx.audit.add(replace(event, detail=f"not recorded: {missed}", id=None))
            tx.audit.add(event)
            tx.commit()
    except Exception:  # noqa: BLE001 - see above
        log.exception("audit: could not record a %s event", event.kind)


def prune(uow: Callable[..., Any], days: int) -> int:
    """Forget the events older than `days` (kept for ever when days < 0); how many."""
    if days < 0:
        return 0
    with uow(write=True) as tx:
        pruned = tx.audit.prune(_now() - timedelta(days=days))
        tx.commit()
    return pruned


def recent(uow: Callable[..., Any], since: datetime | None = None, project_id: str | None = None,
           kind: str | None = None, limit: int = 100) -> list[AuditEvent]:
    """The events newest first, at most `limit`."""
    if limit < 1:
        raise Invalid("The limit must be at least 1")
    with uow() as tx:
        return tx.audit.recent(since, project_id, kind, limit)
