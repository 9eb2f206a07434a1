"""The one paging rule every list follows: a default page size, a maximum, and whether
another page follows (known by asking the store for one item more than the page)."""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from typing import Generic, TypeVar

from vmimage.core.errors import Invalid

DEFAULT_LIMIT = 25
MAX_LIMIT = 1000

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
class Page(Generic[T]):
    items: list[T]
    more: bool          # another page follows the last of these

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

    @classmethod
    def numbered(cls, items: Sequence[T], number: int, size: int) -> "Page[T]":
        """Page `number` (from 1) of `size` items, for dialects that page by number."""
        if number < 1:
            raise Invalid("The page number starts at 1", field="page")
        size = page_size(size) or 0
        start = (number - 1) * size
        return cls.cut(items[start:start + size + 1], size)
