"""The request a piece of work is done for, for the logs: set by the face's middleware for a
request (threads it hands work to inherit it, and fill in the caller once known), and by the
job engine from the job's payload while a job runs, so that a job's or a store's log lines name
the request that caused them."""

from __future__ import annotations

import logging
from contextvars import ContextVar, Token
from dataclasses import dataclass

from vmimage.core.policy import Caller


@dataclass
class RequestContext:
    """Mutable: a thread the request hands work to sees the same object (contextvars are
    copied into threads, not back), so the caller it resolves reaches the request's log line."""
    request_id: str | None
    user_id: str | None = None
    project_id: str | None = None


_current: ContextVar[RequestContext | None] = ContextVar("vmimage_request", default=None)


def current_request_id() -> str | None:
    context = _current.get()
    return context.request_id if context is not None else None


def enter_request(request_id: str | None) -> tuple[RequestContext, Token]:
    """The context of the work begun here; give the token back to leave_request."""
    context = RequestContext(request_id)
    return context, _current.set(context)


def leave_request(token: Token) -> None:
    _current.reset(token)


def note_caller(caller: Caller) -> Caller:
    """The request's caller, once resolved, for its log line."""
    context = _current.get()
    if context is not None:
        context.user_id, context.project_id = caller.user_id, caller.project_id
    return caller


class RequestIdFilter(logging.Filter):
    """Gives every record the request id of the work it was logged in (None outside one)."""

    def filter(self, record: logging.LogRecord) -> bool:
        if not hasattr(record, "request_id"):
            record.request_id = current_request_id()
        return True
