"""Another project's image list while request heads attack the server (issue 19, item 1).

One server; project "other" (user "other") has 20 images. Its `GET /v2/images` and its login
are timed --requests times in quiet, then again while --attackers clients stream --header-mib MiB
request headers (reconnecting each time the server lets them go) and --half-open connections
each hold half a head (reopened as the server closes them after VMIMAGE_HEADER_TIMEOUT_SECONDS).
A third run between them puts the same attack on a sink (a server that takes 64 KiB of each
connection and closes it) to show what the machine's load alone does to the figures (2 cores:
the attackers' own work competes with the server).
Prints p50/p99 of the runs side by side, the server's RSS idle and at its peak, and what the
attackers got off their hands before each refusal.

    .venv/bin/python bench/hostile_heads.py [--attackers 4] [--half-open 220] [--requests 100]

VMIMAGE_BENCH_SERVER runs another build (e.g. one before the head limits) for a before/after
comparison; run it from outside this checkout then, or `python -m vmimage.cli` finds this one:

    cd /tmp && VMIMAGE_BENCH_SERVER="env PYTHONPATH=/other/checkout /other/.venv/bin/python -m vmimage.cli" \
        python /this/checkout/bench/hostile_heads.py --requests 10
"""

from __future__ import annotations

import http.client
import json
import multiprocessing
import select
import selectors
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

    def __init__(self, port: int, attackers: int, half_open: int, header_bytes: int) -> None:
        self.port, self.attackers, self.half_open, self.header_bytes = port, attackers, half_open, header_bytes
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


def _sink(ports: multiprocessing.Queue) -> None:
    """A server that takes 64 KiB of each connection and closes it: what any server must at
    least do, so that the attack on it shows the machine's load alone."""
    listener = socket.create_server((HOST, 0), backlog=1024)
    ports.put(listener.getsockname()[1])
    selector = selectors.DefaultSelector()
    selector.register(listener, selectors.EVENT_READ)
    taken: dict[socket.socket, int] = {}
    while True:
        for key, _ in selector.select():
            if key.fileobj is listener:
                conn, _ = listener.accept()
                conn.setblocking(False)
                selector.register(conn, selectors.EVENT_READ)
                taken[conn] = 0
                continue
            conn = key.fileobj  # type: ignore[assignment]
            try:
                data = conn.recv(256 * KiB)
            except OSError:
                data = b""
            taken[conn] += len(data)
            if not data or taken[conn] > 64 * KiB:
                selector.unregister(conn)
                conn.close()
                del taken[conn]


class Sink:
    def __enter__(self) -> int:
        ports: multiprocessing.Queue = multiprocessing.Queue()
        self._process = multiprocessing.Process(target=_sink, args=(ports,), daemon=True)
        self._process.start()
        return ports.get(timeout=30)

    def __exit__(self, *exc) -> None:
        self._process.terminate()
        self._process.join()


def measure(other: Other, requests: int, server: Server, failures: list[str]) -> tuple[list[float], list[float], int]:
    """Seconds of each list and login (a failed one counts as the whole timeout), peak RSS."""
    lists, logins, peak = [], [], server.rss_kb()

    def timed(op, fn) -> float:
        t0 = time.perf_counter()
        try:
            return fn()
        except (OSError, http.client.HTTPException, RuntimeError) as exc:
            failures.append(f"{op}: {type(exc).__name__} {exc}")
            return max(other.timeout, time.perf_counter() - t0)

    for i in range(requests):
        lists.append(timed("list", other.list))
        if i % 5 == 0:
            logins.append(timed("login", other.login))
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
        quiet_failed: list[str] = []
        busy_failed: list[str] = []
        with CpuWatch(server) as quiet_cpu:
            quiet = measure(other, args.requests, server, quiet_failed)
        with Sink() as sink_port, Attack(sink_port, args.attackers, args.half_open, args.header_mib * MiB):
            time.sleep(1.0)
            with CpuWatch(server) as sink_cpu:
                beside = measure(other, args.requests, server, quiet_failed)
        with Attack(server.port, args.attackers, args.half_open, args.header_mib * MiB) as attack:
            time.sleep(1.0)
            with CpuWatch(server) as busy_cpu:
                busy = measure(other, args.requests, server, busy_failed)
        after_rss = server.rss_kb()
    print(f"== another project's requests, quiet vs {args.attackers} clients streaming {args.header_mib} MiB "
          f"headers and {args.half_open} half-open heads")
    print("(beside: the same attack on a sink taking 64 KiB of each connection, i.e. the machine's load "
          "alone)")
    print(f"{'':22s}{'quiet p50':>10s}{'p99':>10s}{'beside p50':>12s}{'p99':>10s}{'attack p50':>12s}{'p99':>10s}"
          f"   (ms)")
    for name, i in (("GET /v2/images", 0), ("login (Keystone)", 1)):
        print(f"  {name:20s}{ms(quiet[i], 50):>10s}{ms(quiet[i], 99):>10s}{ms(beside[i], 50):>12s}"
              f"{ms(beside[i], 99):>10s}{ms(busy[i], 50):>12s}{ms(busy[i], 99):>10s}")
    print(f"server RSS: idle {idle_rss / 1024:.0f} MB, peak {max(quiet[2], busy[2]) / 1024:.0f} MB, "
          f"after {after_rss / 1024:.0f} MB")
    refused = [s for s in attack.sent if s < args.header_mib * MiB]
    print(f"attackers: {len(attack.sent)} connections, {len(refused)} let go before their header was sent whole; "
          f"sent before that at most {max(attack.sent, default=0) / MiB:.1f} MiB (socket buffers included); "
          f"half-open heads closed by the server: {attack.reopened}")
    print(f"quiet:  {quiet_cpu.text()}")
    print(f"beside: {sink_cpu.text()}")
    print(f"attack: {busy_cpu.text()}")
    for label, failed in (("quiet or beside", quiet_failed), ("attack", busy_failed)):
        if failed:
            print(f"{label}: {len(failed)} requests failed (counted as {args.timeout:g} s), e.g. {failed[0]}")
    return 0 if not quiet_failed and not busy_failed else 1


if __name__ == "__main__":
    sys.exit(main())
