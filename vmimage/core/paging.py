"""The one paging rule every list follows: a default page size, a maximum, and whether
another page follows (known by asking the store for one item more than the page).

A PageRequest says which page a caller wants, in either dialect: the items after a marker
(the last item of the page before), or after skipping `offset` items (dialects that page by
number); and whether the number of all matches is wanted (dialects that show a total). The
repository runs it in the database and answers with a Page."""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from typing import Generic, TypeVar

from vmimage.core.errors import Invalid

DEFAULT_LIMIT = 25
MAX_LIMIT = 1000
# Farther than any list reaches; a larger page number only asks for an empty page.
MAX_OFFSET = 1 << 62

T = TypeVar("T")


def page_size(limit: int | None, default: int | None = DEFAULT_LIMIT) -> int | None:
    """The page size for a caller's limit: `default` when none is given (None: no paging),
    never negative, at most MAX_LIMIT."""
    if limit is None:
        return default
    if limit < 0:
        raise Invalid("'limit' must not be negative", field="limit")
    return min(limit, MAX_LIMIT)


def fetch_size(size: int | None) -> int | None:
    """How many to ask the store for: one more than the page tells whether more follow."""
    return None if size is None else size + 1


@dataclass
class PageRequest:
    limit: int | None = DEFAULT_LIMIT    # None: every match
    marker: str | None = None            # the id of the item the page follows
    offset: int = 0                      # items skipped before the page
    counted: bool = False                # the total of all matches is wanted

    @classmethod
    def numbered(cls, number: int, size: int, counted: bool = True, field: str = "page") -> "PageRequest":
        """Page `number` (from 1) of `size` items (at most MAX_LIMIT)."""
        if number < 1:
            raise Invalid("The page number starts at 1", field=field)
        limit = page_size(size) or 0
        return cls(limit=limit, offset=min((number - 1) * limit, MAX_OFFSET), counted=counted)

    @classmethod
    def everything(cls) -> "PageRequest":
        return cls(limit=None)

    def validate(self) -> None:
        self.limit = page_size(self.limit, default=None)
        if self.offset < 0:
            raise Invalid("The offset must not be negative", field="offset")

    @property
    def fetch_limit(self) -> int | None:
        """What the repository asks the database for: one item more than the page."""
        return fetch_size(self.limit)

    def cut(self, found: Sequence[T], total: int | None = None) -> "Page[T]":
        """The page from what was fetched with fetch_limit (and the count, when counted)."""
        page = Page.cut(found, self.limit)
        page.total = total
        return page


@dataclass
class Page(Generic[T]):
    items: list[T]
    more: bool                  # another page follows the last of these
    total: int | None = None    # every match, on every page (when the request counted them)

    def __iter__(self) -> Iterator[T]:
        return iter(self.items)

    def __len__(self) -> int:
        return len(self.items)

    @classmethod
    def cut(cls, found: Sequence[T], size: int | None) -> "Page[T]":
        """The page of `size` from what was fetched with fetch_size(size)."""
        if size is None:
            return cls(list(found), False)
        return cls(list(found[:size]), len(found) > size)
