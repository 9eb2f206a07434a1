"""Metadata create rate: POST /v2/images, sequential on one keep-alive connection, then
N requests shared by C concurrent clients (threads, each with its own keep-alive
http.client connection: the cheapest client in CPU, since client and server share the cores).
With --glance, upstream Glance (Debian's glance-api, SQLite, no Keystone: scripts/glance-peer.sh)
gets the same runs afterwards in the same invocation, and the ratios are to its figures.

    .venv/bin/python bench/create.py [--n 1000] [--clients 8] [--prefill 0] [--glance]
"""

from __future__ import annotations

import http.client
import json
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
    args = p.parse_args()

    with Server(args.data_root, args.keep) as server:
        print(f"server PID {server.pid}, port {server.port}")
        token = get_token(server)
        if args.prefill:
            took = populate(server, token, args.prefill)
            print(f"  prefill: {args.prefill} images in {took:.1f} s")
        sequential(server, token, args.warmup)
        maybe_pause(args, server)
        seq_rate, seq_lat, conc_rate, conc_lat = measure(server, token, args)

    glance_rate = GLANCE_BASELINE
    if args.glance:
        from _glance import GlancePeer
        with GlancePeer(args.data_root, args.keep) as glance:
            print(f"Glance (glance-api) PIDs {glance.pids()}, port {glance.port}")
            if args.prefill:
                took = populate(glance, None, args.prefill)
                print(f"  prefill: {args.prefill} images in {took:.1f} s")
            sequential(glance, None, args.warmup)
            glance_rate, _, glance_conc, _ = measure(glance, None, args)

    scale = f" (after {args.prefill} prefilled images)" if args.prefill else ""
    measured = (f"Glance in this run {glance_rate:.1f}/s sequential, {glance_conc:.1f}/s with {args.clients} "
                f"clients: ratios {seq_rate / glance_rate:.1f}x and {conc_rate / glance_conc:.1f}x"
                if args.glance else f"ratio vs Glance 40/s (measured earlier): {seq_rate / glance_rate:.1f}x")
    print(f"create{scale}: sequential {seq_rate:.1f}/s (p50 {percentile(seq_lat, 50) * 1000:.2f} ms, "
          f"p99 {percentile(seq_lat, 99) * 1000:.2f} ms), {args.clients} clients {conc_rate:.1f}/s "
          f"(p50 {percentile(conc_lat, 50) * 1000:.2f} ms, p99 {percentile(conc_lat, 99) * 1000:.2f} ms); "
          f"{measured}; vs target 400/s: {seq_rate / TARGET:.2f} (target >= 1.00)")


def measure(server, token: str | None, args) -> tuple[float, list[float], float, list[float]]:
    with CpuWatch(server) as cpu:
        seq_rate, seq_lat = sequential(server, token, args.n)
    print(f"  sequential, 1 keep-alive connection, N={args.n}: {seq_rate:.1f} req/s; "
          f"{summary_ms(seq_lat)}; {cpu.text()}; {cpu.server_cpu / args.n * 1000:.2f} server CPU-ms per create",
          flush=True)
    with CpuWatch(server) as cpu:
        conc_rate, conc_lat = concurrent(server, token, args.n, args.clients)
    print(f"  concurrent, {args.clients} clients, N={args.n}: {conc_rate:.1f} req/s; "
          f"{summary_ms(conc_lat)}; {cpu.text()}; {cpu.server_cpu / args.n * 1000:.2f} server CPU-ms per create",
          flush=True)
    return seq_rate, seq_lat, conc_rate, conc_lat


if __name__ == "__main__":
    main()
