"""Metadata create rate: POST /v2/images, sequential on one keep-alive connection, then
N requests shared by C concurrent clients (threads, each with its own keep-alive
http.client connection: the cheapest client in CPU, since client and server share the cores).
With --glance, upstream Glance (Debian's glance-api, SQLite, no Keystone: scripts/glance-peer.sh)
runs beside vmimage and gets the same requests (--glance-n of them per mode, it is slower), the two
alternating over --rounds rounds (who goes first swaps) so both see the same machine load; the
rates are medians over the rounds and the ratios are to Glance's.

    .venv/bin/python bench/create.py [--n 1000] [--clients 8] [--prefill 0] [--glance [--rounds 3]]
"""

from __future__ import annotations

import contextlib
import http.client
import json
import statistics
import threading
import time

from _common import (HOST, CpuWatch, Server, auth_headers, base_parser, get_token, maybe_pause, percentile,
                     populate, summary_ms)

GLANCE_BASELINE = 40.0     # creates/s, sequential, measured earlier (--glance measures it in the run)
TARGET = 400.0


class Client:
    def __init__(self, server, token: str | None) -> None:
        self.conn = http.client.HTTPConnection(HOST, server.port, timeout=60)
        self.headers = {"Content-Type": "application/json", **auth_headers(token)}

    def create(self, name: str) -> float:
        body = json.dumps({"name": name, "disk_format": "raw", "container_format": "bare"})
        t0 = time.perf_counter()
        self.conn.request("POST", "/v2/images", body=body, headers=self.headers)
        resp = self.conn.getresponse()
        data = resp.read()
        elapsed = time.perf_counter() - t0
        if resp.status != 201:
            raise RuntimeError(f"create failed: {resp.status} {data[:300]!r}")
        return elapsed

    def close(self) -> None:
        self.conn.close()


def sequential(server, token: str | None, n: int) -> tuple[float, list[float]]:
    client = Client(server, token)
    lat = []
    t0 = time.perf_counter()
    for i in range(n):
        lat.append(client.create(f"seq-{i}"))
    wall = time.perf_counter() - t0
    client.close()
    return n / wall, lat


def concurrent(server, token: str | None, n: int, clients: int) -> tuple[float, list[float]]:
    per = [n // clients + (1 if i < n % clients else 0) for i in range(clients)]
    lat: list[list[float]] = [[] for _ in range(clients)]
    errors: list[BaseException] = []
    conns = [Client(server, token) for _ in range(clients)]
    start = threading.Barrier(clients + 1)

    def run(k: int) -> None:
        try:
            start.wait()
            for i in range(per[k]):
                lat[k].append(conns[k].create(f"conc-{k}-{i}"))
        except BaseException as exc:  # noqa: BLE001
            errors.append(exc)

    threads = [threading.Thread(target=run, args=(k,)) for k in range(clients)]
    for t in threads:
        t.start()
    start.wait()
    t0 = time.perf_counter()
    for t in threads:
        t.join()
    wall = time.perf_counter() - t0
    for c in conns:
        c.close()
    if errors:
        raise errors[0]
    return n / wall, [x for part in lat for x in part]


def main() -> None:
    p = base_parser(__doc__)
    p.add_argument("--n", type=int, default=1000, help="creates per mode")
    p.add_argument("--clients", type=int, default=8, help="concurrent clients")
    p.add_argument("--warmup", type=int, default=20)
    p.add_argument("--prefill", type=int, default=0,
                   help="images to create first (not measured): the project's size affects a create")
    p.add_argument("--glance", action="store_true",
                   help="measure upstream Glance too, in the same run (needs Debian's glance-api)")
    p.add_argument("--glance-n", type=int, default=300, help="creates per mode and round for Glance")
    p.add_argument("--rounds", type=int, default=0, help="rounds (default 3 with --glance, else 1)")
    args = p.parse_args()

    rounds = args.rounds or (3 if args.glance else 1)
    with contextlib.ExitStack() as stack:
        server = stack.enter_context(Server(args.data_root, args.keep))
        print(f"server PID {server.pid}, port {server.port}")
        sides = [Side("vmimage", server, get_token(server), args.n)]
        if args.glance:
            from _glance import GlancePeer
            glance = stack.enter_context(GlancePeer(args.data_root, args.keep))
            print(f"Glance (glance-api) PIDs {glance.pids()}, port {glance.port}")
            sides.append(Side("Glance", glance, None, min(args.n, args.glance_n)))
        for side in sides:
            if args.prefill:
                took = populate(side.server, side.token, args.prefill)
                print(f"  {side.name} prefill: {args.prefill} images in {took:.1f} s")
            sequential(side.server, side.token, args.warmup)
        maybe_pause(args, server)
        for k in range(rounds):
            for side in (sides if k % 2 == 0 else sides[::-1]):
                print(f"round {k + 1}, {side.name}:")
                side.measure(args.clients)

    scale = f" (after {args.prefill} prefilled images)" if args.prefill else ""
    vm = sides[0]
    for side in sides:
        print(f"{side.name}: sequential {side.text(args.clients)}")
    if args.glance:
        gl = sides[1]
        per_round = ", ".join(f"{a / b:.1f}" for a, b in zip(vm.seq, gl.seq))
        measured = (f"vs Glance in this run: sequential {vm.seq_rate / gl.seq_rate:.1f}x (per round {per_round}), "
                    f"{args.clients} clients {vm.conc_rate / gl.conc_rate:.1f}x")
    else:
        measured = f"vs Glance's 40/s measured earlier: {vm.seq_rate / GLANCE_BASELINE:.1f}x"
    print(f"create{scale}: {measured}; vs target 400/s: {vm.seq_rate / TARGET:.2f} (target >= 1.00)")


class Side:
    """One server under test and its figures over the rounds."""

    def __init__(self, name: str, server, token: str | None, n: int) -> None:
        self.name, self.server, self.token, self.n = name, server, token, n
        self.seq: list[float] = []
        self.conc: list[float] = []
        self.seq_lat: list[float] = []
        self.conc_lat: list[float] = []

    def measure(self, clients: int) -> None:
        seq_rate, seq_lat, conc_rate, conc_lat = measure(self.server, self.token, self.n, clients)
        self.seq.append(seq_rate)
        self.conc.append(conc_rate)
        self.seq_lat += seq_lat
        self.conc_lat += conc_lat

    @property
    def seq_rate(self) -> float:
        return statistics.median(self.seq)

    @property
    def conc_rate(self) -> float:
        return statistics.median(self.conc)

    def text(self, clients: int) -> str:
        def span(xs: list[float]) -> str:
            return f" ({min(xs):.1f}-{max(xs):.1f})" if len(xs) > 1 else ""
        return (f"{self.seq_rate:.1f}/s{span(self.seq)} (p50 {percentile(self.seq_lat, 50) * 1000:.2f} ms, "
                f"p99 {percentile(self.seq_lat, 99) * 1000:.2f} ms), {clients} clients "
                f"{self.conc_rate:.1f}/s{span(self.conc)} (p50 {percentile(self.conc_lat, 50) * 1000:.2f} ms, "
                f"p99 {percentile(self.conc_lat, 99) * 1000:.2f} ms)")


def measure(server, token: str | None, n: int, clients: int) -> tuple[float, list[float], float, list[float]]:
    with CpuWatch(server) as cpu:
        seq_rate, seq_lat = sequential(server, token, n)
    print(f"  sequential, 1 keep-alive connection, N={n}: {seq_rate:.1f} req/s; "
          f"{summary_ms(seq_lat)}; {cpu.text()}; {cpu.server_cpu / n * 1000:.2f} server CPU-ms per create",
          flush=True)
    with CpuWatch(server) as cpu:
        conc_rate, conc_lat = concurrent(server, token, n, clients)
    print(f"  concurrent, {clients} clients, N={n}: {conc_rate:.1f} req/s; "
          f"{summary_ms(conc_lat)}; {cpu.text()}; {cpu.server_cpu / n * 1000:.2f} server CPU-ms per create",
          flush=True)
    return seq_rate, seq_lat, conc_rate, conc_lat


if __name__ == "__main__":
    main()
