"""HttpFetcher: reads remote data for web-download and the http store, under the URL policy.

Redirects are followed by hand so every hop is checked, and each request goes to the
address the check saw (Host header and TLS server name keep the original host).

The web is one backend (core/backends.py): every request and every chunk read is a call
through its gate, with a breaker per origin (a stalled web server short-circuits itself, not
the others) and the backend's stall deadline for connects and reads. A server that does not
answer in time is BackendUnavailable (503); one that cannot be reached or answers an error
is InvalidSource, as before.
"""

from __future__ import annotations

import socket
from collections.abc import Iterator
from urllib.parse import urljoin, urlsplit, urlunsplit

import httpx

from vmimage.core.backends import Backend, Call
from vmimage.core.errors import BackendUnavailable, InvalidSource
from vmimage.core.ports import READ_CHUNK
from vmimage.core.url_filter import Target, UrlPolicy

_MAX_REDIRECTS = 5


def _resolve(host: str, port: int) -> list[str]:
    try:
        infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)
    except socket.gaierror:
        return []
    return list(dict.fromkeys(str(info[4][0]) for info in infos))


def _failed(call: Call, backend: Backend, origin: str, exc: httpx.HTTPError, what: str) -> Exception:
    """A transport error of one call, as a core error; every one is an outage of the origin."""
    call.failed(stalled=isinstance(exc, httpx.TimeoutException))
    if isinstance(exc, httpx.TimeoutException):
        return BackendUnavailable(f"{origin} did not answer within {backend.stall_seconds:g} s", backend=backend.name)
    return InvalidSource(f"{what}: {exc}")


class Fetched:
    """An open response: its size (when the server said) and its body in chunks, each read a
    call through the backend's gate."""

    def __init__(self, response: httpx.Response, size: int | None, backend: Backend, origin: str) -> None:
        self._response, self.size = response, size
        self._backend, self._origin = backend, origin

    def __iter__(self) -> Iterator[bytes]:
        stream = self._response.iter_bytes(READ_CHUNK)
        try:
            while True:
                with self._backend.call(self._origin) as call:
                    try:
                        chunk = next(stream, None)
                    except httpx.HTTPError as exc:
                        raise _failed(call, self._backend, self._origin, exc,
                                      "Reading the remote data failed") from None
                if chunk is None:
                    return
                yield chunk
        finally:
            self._response.close()

    def close(self) -> None:
        self._response.close()


class HttpFetcher:
    def __init__(self, policy: UrlPolicy, backend: Backend | None = None, resolve=_resolve) -> None:
        self.policy, self._resolve = policy, resolve
        self.backend = backend or Backend("web server", stall_seconds=30.0)
        self._client = httpx.Client(timeout=httpx.Timeout(self.backend.stall_seconds), follow_redirects=False,
                                    trust_env=False)

    def check(self, url: str) -> None:
        """Refuse a URL now (before any job starts) when it cannot pass filtering."""
        target = self.policy.target(url)
        self.policy.check_addresses(url, target, self._resolve(target.host, target.port))

    def open(self, url: str, start: int = 0, end: int | None = None, method: str = "GET") -> Fetched:
        headers = {}
        if start or end is not None:
            headers["Range"] = f"bytes={start}-{'' if end is None else end - 1}"
        for _ in range(_MAX_REDIRECTS + 1):
            target = self.policy.target(url)
            addresses = self._resolve(target.host, target.port)
            self.policy.check_addresses(url, target, addresses)
            origin = f"{target.scheme}://{target.host}:{target.port}"
            with self.backend.call(origin) as call:
                response = self._send(method, url, target, addresses[0], headers, call, origin)
                if response.status_code >= 500:
                    call.failed()
            if response.is_redirect and "location" in response.headers:
                response.close()
                url = urljoin(url, response.headers["location"])
                continue
            if response.status_code not in (200, 206):
                response.close()
                raise InvalidSource(f"{url} answered HTTP {response.status_code}")
            if headers and method == "GET" and response.status_code != 206:
                # the server ignored the range: its bytes would be the wrong ones (or all of them)
                response.close()
                raise InvalidSource(f"{url} does not serve byte ranges")
            length = response.headers.get("content-length")
            return Fetched(response, int(length) if length and length.isdigit() else None, self.backend, origin)
        raise InvalidSource(f"{url}: too many redirects")

    def size(self, url: str) -> int | None:
        fetched = self.open(url, method="HEAD")
        fetched.close()
        return fetched.size

    def _send(self, method: str, url: str, target: Target, address: str, headers: dict, call: Call,
              origin: str) -> httpx.Response:
        parts = urlsplit(url)
        host = f"[{address}]" if ":" in address else address
        pinned = urlunsplit((target.scheme, f"{host}:{target.port}", parts.path or "/", parts.query, ""))
        default_port = 443 if target.scheme == "https" else 80
        host_header = target.host if target.port == default_port else f"{target.host}:{target.port}"
        extensions = {"sni_hostname": target.host} if target.scheme == "https" else {}
        request = self._client.build_request(method, pinned, headers={**headers, "Host": host_header},
                                             extensions=extensions)
        try:
            return self._client.send(request, stream=True)
        except httpx.HTTPError as exc:
            raise _failed(call, self.backend, origin, exc, f"Could not reach {url}") from None
