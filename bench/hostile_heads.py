"""Another project's image list while request heads attack the server (issue 19, item 1).

One server; project "other" (user "other") has 20 images. Its `GET /v2/images` and its login
are timed --requests times in quiet, then again while --attackers clients stream --header-mib MiB
request headers (reconnecting each time the server lets them go) and --half-open connections
each hold half a head (reopened as the server closes them after VMIMAGE_HEADER_TIMEOUT_SECONDS).
Prints p50/p99 of both runs side by side, the server's RSS idle and at its peak, and what the
attackers got off their hands before each refusal. VMIMAGE_BENCH_SERVER runs another build (e.g.
one before the head limits) for a before/after comparison.

    .venv/bin/python bench/hostile_heads.py [--attackers 4] [--half-open 220] [--requests 100]
"""

from __future__ import annotations

import http.client
import json
import multiprocessing
import select
import socket
import sys
import threading
import time

from _common import HOST, CpuWatch, Server, base_parser, maybe_pause, percentile
from stalled_uploads import admin_cli

KiB, MiB = 1 << 10, 1 << 20
LOGIN = json.dumps({"auth": {
    "identity": {"methods": ["password"], "password": {"user": {
        "name": "other", "password": "other", "domain": {"id": "default"}}}},
    "scope": {"project": {"name": "other", "domain": {"id": "default"}}}}})


class Other:
    """The bystander: logs in and lists on fresh connections, as a client arriving would."""

    def __init__(self, server: Server, timeout: float) -> None:
        self.server, self.timeout = server, timeout
        self.token = ""

    def _call(self, method: str, path: str, body: str | None, headers: dict[str, str]) -> http.client.HTTPResponse:
        conn = http.client.HTTPConnection(HOST, self.server.port, timeout=self.timeout)
        try:
            conn.request(method, path, body=body, headers=headers)
            resp = conn.getresponse()
            resp.read()
            return resp
        finally:
            conn.close()

    def login(self) -> float:
        t0 = time.perf_counter()
        resp = self._call("POST", "/identity/v3/auth/tokens", LOGIN, {"Content-Type": "application/json"})
        if resp.status != 201:
            raise RuntimeError(f"login answered {resp.status}")
        self.token = resp.getheader("X-Subject-Token") or ""
        return time.perf_counter() - t0

    def list(self) -> float:
        t0 = time.perf_counter()
        resp = self._call("GET", "/v2/images", None, {"X-Auth-Token": self.token})
        if resp.status != 200:
            raise RuntimeError(f"list answered {resp.status}")
        return time.perf_counter() - t0


class Attack:
    """The attackers, in a process of their own so that they do not slow the bystander's client
    (one interpreter lock) and the figures are the server's."""

    def __init__(self, server: Server, attackers: int, half_open: int, header_bytes: int) -> None:
        self.port, self.attackers, self.half_open, self.header_bytes = server.port, attackers, half_open, header_bytes
        self.sent: list[int] = []
        self.reopened = 0
        self._results: multiprocessing.Queue = multiprocessing.Queue()
        self._stop = multiprocessing.Event()
        self._process = multiprocessing.Process(target=self._run, daemon=True)

    def __enter__(self) -> "Attack":
        self._process.start()
        return self

    def __exit__(self, *exc) -> None:
        self._stop.set()
        self.sent, self.reopened = self._results.get(timeout=120)
        self._process.join(timeout=60)

    def _run(self) -> None:
        self.stop = threading.Event()
        threads = [threading.Thread(target=self._stream, daemon=True) for _ in range(self.attackers)]
        threads.append(threading.Thread(target=self._crowd, daemon=True))
        for t in threads:
            t.start()
        self._stop.wait()
        self.stop.set()
        for t in threads:
            t.join(timeout=60)
        self._results.put((self.sent, self.reopened))

    def _stream(self) -> None:
        piece = b"a" * (256 * KiB)
        while not self.stop.is_set():
            sent = 0
            try:
                with socket.create_connection((HOST, self.port), timeout=30) as sock:
                    sock.sendall(b"GET /v2/images HTTP/1.1\r\nHost: x\r\nX-Huge: ")
                    while sent < self.header_bytes and not self.stop.is_set():
                        sock.sendall(piece)
                        sent += len(piece)
                    sock.sendall(b"\r\n\r\n")
                    sock.recv(4096)
            except OSError:
                pass
            self.sent.append(sent)

    def _crowd(self) -> None:
        socks: list[socket.socket] = []
        while not self.stop.is_set():
            while len(socks) < self.half_open:
                try:
                    sock = socket.create_connection((HOST, self.port), timeout=10)
                    sock.sendall(b"GET /v2/images HTTP/1.1\r\nHost: x\r\nX-Half: ")
                    socks.append(sock)
                except OSError:
                    break
            for sock in select.select(socks, [], [], 0.1)[0]:
                socks.remove(sock)
                sock.close()
                self.reopened += 1
        for sock in socks:
            sock.close()


def measure(other: Other, requests: int, server: Server) -> tuple[list[float], list[float], int]:
    lists, logins, peak = [], [], server.rss_kb()
    for i in range(requests):
        lists.append(other.list())
        if i % 5 == 0:
            logins.append(other.login())
        peak = max(peak, server.rss_kb())
    return lists, logins, peak


def ms(values: list[float], p: float) -> str:
    return f"{percentile(values, p) * 1000:8.1f}"


def main() -> int:
    p = base_parser(__doc__)
    p.add_argument("--attackers", type=int, default=4)
    p.add_argument("--half-open", type=int, default=220)
    p.add_argument("--header-mib", type=int, default=64)
    p.add_argument("--requests", type=int, default=100)
    p.add_argument("--timeout", type=float, default=60.0, help="a bystander's request timeout, seconds")
    args = p.parse_args()
    with Server(args.data_root, args.keep) as server:
        admin_cli(server, "project", "create", "other")
        admin_cli(server, "user", "create", "other", "--project", "other", "--role", "member", "--password", "other")
        other = Other(server, args.timeout)
        other.login()
        for i in range(20):
            conn = http.client.HTTPConnection(HOST, server.port, timeout=30)
            conn.request("POST", "/v2/images", json.dumps({"name": f"other-{i}", "disk_format": "raw",
                                                           "container_format": "bare"}),
                         {"Content-Type": "application/json", "X-Auth-Token": other.token})
            conn.getresponse().read()
            conn.close()
        maybe_pause(args, server)
        idle_rss = server.rss_kb()
        with CpuWatch(server) as quiet_cpu:
            quiet = measure(other, args.requests, server)
        with Attack(server, args.attackers, args.half_open, args.header_mib * MiB) as attack:
            time.sleep(1.0)
            with CpuWatch(server) as busy_cpu:
                busy = measure(other, args.requests, server)
        after_rss = server.rss_kb()
    print(f"== another project's requests, quiet vs {args.attackers} clients streaming {args.header_mib} MiB "
          f"headers and {args.half_open} half-open heads")
    print(f"{'':22s}{'quiet p50':>10s}{'p99':>10s}{'attack p50':>12s}{'p99':>10s}   (ms)")
    for name, q, b in (("GET /v2/images", quiet[0], busy[0]), ("login (Keystone)", quiet[1], busy[1])):
        print(f"  {name:20s}{ms(q, 50):>10s}{ms(q, 99):>10s}{ms(b, 50):>12s}{ms(b, 99):>10s}")
    print(f"server RSS: idle {idle_rss / 1024:.0f} MB, peak {max(quiet[2], busy[2]) / 1024:.0f} MB, "
          f"after {after_rss / 1024:.0f} MB")
    refused = [s for s in attack.sent if s < args.header_mib * MiB]
    print(f"attackers: {len(attack.sent)} connections, {len(refused)} let go before their header was sent whole; "
          f"sent before that at most {max(attack.sent, default=0) / MiB:.1f} MiB (socket buffers included); "
          f"half-open heads closed by the server: {attack.reopened}")
    print(f"quiet:  {quiet_cpu.text()}")
    print(f"attack: {busy_cpu.text()}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
