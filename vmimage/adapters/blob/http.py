"""HttpBlobStore: the read-only store of image locations at http(s) URLs (Glance's http store).

The key is the URL. Reads go through the HttpFetcher, so the URL policy applies to every
read, not only when the location was added.
"""

from __future__ import annotations

from collections.abc import Iterator

from vmimage.adapters.web.fetch import HttpFetcher
from vmimage.core.errors import Forbidden, InvalidSource, NotFound
from vmimage.core.ports import READ_CHUNK


class HttpBlobStore:
    kind = "http"
    read_only = True

    def __init__(self, name: str, fetcher: HttpFetcher) -> None:
        self.name, self.fetcher = name, fetcher
        self.backend = fetcher.backend
        self.description = "Read-only data at http(s) URLs"

    def url(self, key: str) -> str:
        return key

    def writer(self, key: str):
        raise Forbidden(f"Store '{self.name}' is read-only", store=self.name)

    def read(self, key: str, start: int = 0, end: int | None = None,
             chunk_size: int = READ_CHUNK) -> Iterator[bytes]:
        try:
            return iter(self.fetcher.open(key, start, end))
        except InvalidSource as exc:
            raise NotFound(f"Image data is not reachable: {exc.message}") from None

    def delete(self, key: str) -> None:
        """Nothing to delete: the data belongs to the web server."""

    def exists(self, key: str) -> bool:
        try:
            self.fetcher.size(key)
            return True
        except InvalidSource:
            return False

    def size(self, key: str) -> int:
        size = self.fetcher.size(key)
        if size is None:
            raise InvalidSource(f"{key} does not tell its size")
        return size

    def cleanup_partial(self, key: str | None = None) -> int:
        return 0

    def check(self) -> None:
        pass     # read-only: holds other servers' data, each answering for itself

    def local_path(self, key: str) -> str | None:
        return None

    def open_file(self, key: str) -> None:
        return None
