"""What every list query shares, as SQL: a core PageRequest (OFFSET and LIMIT, one row
more than the page to know whether another follows, and a COUNT of every match when the
request counts), and matching a part of a text in any case."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from sqlalchemy import ColumnElement, Connection, Row, Select, func

from vmimage.core.paging import Page, PageRequest


def fetch_page(conn: Connection, matches: Select[Any], order: Sequence[ColumnElement[Any]], request: PageRequest,
               after: ColumnElement[bool] | None = None) -> Page[Row[Any]]:
    """The rows of the page: of `matches`, in `order`, after the marker's condition `after`
    (when the request has a marker). The total counts every match, the marker aside."""
    stmt = matches if after is None else matches.where(after)
    stmt = stmt.order_by(*order).offset(request.offset or None).limit(request.fetch_limit)
    page = request.cut(list(conn.execute(stmt)))
    if request.counted:
        last = not page.more and (bool(page.items) or not request.offset)
        if last and after is None:
            page.total = request.offset + len(page.items)      # the last page: nothing to count
        else:
            count = matches.with_only_columns(func.count(), maintain_column_froms=True).order_by(None)
            page.total = int(conn.execute(count).scalar_one())
    return page


def contains_any_case(col: ColumnElement[Any], part: str) -> ColumnElement[bool]:
    """The column's text contains `part`, in any case (LIKE, its wildcards escaped)."""
    escaped = part.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
    return func.lower(col).like(f"%{escaped.lower()}%", escape="\\")
