"""Core errors -> a face's (HTTP status, code): the one mechanism every face's error table uses.

A face's ErrorCodes holds rows keyed by (core error class, qualifier), the qualifier saying
what the error is about:
    None                        the class alone
    "image_id", "bucket"...     a structured field the error names (the entity it is about)
    "field=<name>"              an invalid value of that field (a dotted field is also looked
                                up by its last part: "storage.volumes.0.size" as "field=size")
    "field=<name>/<reason>"     the same, for one reason ("field=name/too_long")
    "route=<METHOD> <path>"     one route that names a code its own way (the face says its path)
The error's classes are walked closest first, and the closest class with a row wins; within
a class, the most specific qualifier: field/reason, field, the entities the error names (in
the order it names them), route, the class alone.

An error no row of the face matches gets its status from DEFAULT_STATUS (the same walk), and
its code from the face's own code for that status (`by_status`): a face's rows override, the
default fills the rest, so no core error falls to 500 in any face. Only an error of no family
(a bare VmImageError) is a 500.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Generic, TypeVar, cast

from vmimage.core import errors as e

C = TypeVar("C")
Qualifier = str | None

# The REST status of each core error family, every face's fallback.
DEFAULT_STATUS: dict[type[e.VmImageError], int] = {
    e.VmImageError: 500,        # an error of no family: an internal error
    e.NotFound: 404,
    e.Gone: 410,
    e.Conflict: 409,
    e.Invalid: 400,
    e.BadImageFormat: 415,
    e.Forbidden: 403,
    e.Unauthenticated: 401,
    e.QuotaExceeded: 413,
    e.TooManyRequests: 429,
    e.BackendUnavailable: 503,
    e.RequestTooLarge: 413,
    e.Stalled: 408,
}


def retry_after_header(exc: e.VmImageError) -> dict[str, str]:
    """Retry-After for an error that says when to come back (TooManyRequests)."""
    wait = exc.fields.get("retry_after")
    return {"Retry-After": str(int(wait))} if isinstance(wait, (int, float)) else {}


def qualifiers(exc: e.VmImageError, route: str | None = None) -> list[Qualifier]:
    """What the error is about, most specific first (the order rows are tried within a class)."""
    fields = exc.fields
    about: list[Qualifier] = []
    if "field" in fields:
        field = str(fields["field"])
        for name in dict.fromkeys([field, field.rsplit(".", 1)[-1]]):
            if "reason" in fields:
                about.append(f"field={name}/{fields['reason']}")
            about.append(f"field={name}")
    about += fields
    if route is not None:
        about.append(f"route={route}")
    about.append(None)
    return about


class ErrorCodes(Generic[C]):
    """One face's table: rows (class, qualifier) -> (status, code), and its code for each
    default status (None: the face has no codes of its own, it renders the status alone or
    the core's code)."""

    def __init__(self, rows: Mapping[tuple[type[e.VmImageError], Qualifier], tuple[int, C]] | None = None,
                 by_status: Mapping[int, C] | None = None) -> None:
        self.rows = dict(rows or {})
        self._rows: dict[type[e.VmImageError], dict[Qualifier, tuple[int, C]]] = {}
        for (cls, about), row in self.rows.items():
            self._rows.setdefault(cls, {})[about] = row
        if by_status is not None:
            missing = sorted(set(DEFAULT_STATUS.values()) - set(by_status))
            if missing:
                raise ValueError(f"no code for the default statuses {missing}")
        self.by_status = by_status

    def lookup(self, exc: e.VmImageError, route: str | None = None) -> tuple[int, C]:
        """(status, code) of a core error (raised on `route`, for tables with route rows)."""
        classes = type(exc).__mro__
        about: list[Qualifier] | None = None
        for cls in classes:
            rows = self._rows.get(cls)
            if rows:
                about = about or qualifiers(exc, route)
                for what in about:
                    if what in rows:
                        return rows[what]
        for cls in classes:
            if cls in DEFAULT_STATUS:
                status = DEFAULT_STATUS[cls]
                # A table without codes of its own is an ErrorCodes[None].
                return status, cast(C, None) if self.by_status is None else self.by_status[status]
        raise TypeError(f"{type(exc).__name__} is not a core error")
