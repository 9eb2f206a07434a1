"""What scraping GET /metrics costs the server, against what a metadata create costs it.

1. Scrapes alone: an idle server scraped --rate times a second for --seconds; the server's
   CPU per scrape (less what the idle server spends in as long without scrapes). The same
   for GET /healthz (no work at all) at the same rate: what any request costs a server it
   wakes, so the scrape's own part is the difference.
2. Creates (POST /v2/images from --clients concurrent keep-alive connections, as in
   bench/create.py, --n per round) with and without a thread scraping --rate times a second
   beside them, alternating over --rounds rounds (which goes first swaps); the server's CPU
   per create in each mode (medians).

3. Interleaved (the figure): creates run all along from --clients connections, a scraper at
   --busy-rate (100/s: ten times the figure's rate, to lift its cost out of the noise; the cost
   is then scaled to --rate) is switched on and off in alternate slices of --slice seconds for --pairs pairs (which half
   goes first swaps each pair), and the server's CPU and the creates done are read at each
   slice's edges. The machine's speed drifts by ±10 % over the minutes of 2. (the CPU per create
   of whole rounds moves more than scraping costs); over slices of a few seconds, taken in turn,
   the drift cancels out. The figure: CPU per create with the scraper on over CPU per create
   with it off, less one, with a 95 % interval over the pairs.

The figure the issue sets (< 1 % of a create's CPU at 10 scrapes/s) is 3. 1. prints what a
scrape costs an idle server it wakes (the wake-up itself, as 1.'s /healthz shows, is most of
it, and is not paid by a server that is busy creating).

    .venv/bin/python bench/metrics_scrape.py [--rate 10] [--n 3000] [--clients 8] [--rounds 3] [--seconds 20]
                                             [--pairs 30] [--slice 2]
"""

from __future__ import annotations

import http.client
import statistics
import threading
import time

from _common import HOST, CpuWatch, Server, base_parser, get_token, maybe_pause
from create import Client, concurrent

TARGET = 0.01


class Scraper:
    """GET `path` (/metrics) `rate` times a second on its own connection until stopped."""

    def __init__(self, server: Server, rate: float, path: str = "/metrics",
                 gate: threading.Event | None = None) -> None:
        self.server, self.interval, self.path = server, 1.0 / rate, path
        self.done = 0
        self._stop = threading.Event()
        self._gate = gate           # scrapes only while it is set
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _run(self) -> None:
        conn = http.client.HTTPConnection(HOST, self.server.port, timeout=30)
        next_at = time.monotonic()
        while not self._stop.is_set():
            if self._gate is not None and not self._gate.is_set():
                self._stop.wait(0.01)
                next_at = time.monotonic()
                continue
            conn.request("GET", self.path)
            resp = conn.getresponse()
            body = resp.read()
            if resp.status != 200 or (self.path == "/metrics" and b"vmimage_http_requests_total" not in body):
                raise RuntimeError(f"scrape failed: {resp.status}")
            self.done += 1
            next_at += self.interval
            self._stop.wait(max(0.0, next_at - time.monotonic()))
        conn.close()

    def __enter__(self) -> "Scraper":
        self._thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self._stop.set()
        self._thread.join()


def creates(server: Server, token: str, n: int, clients: int, scrape_rate: float | None) -> tuple[float, float, int]:
    """Server CPU per create (s), creates per second, scrapes done."""
    scraped = 0
    with CpuWatch(server) as cpu:
        if scrape_rate:
            with Scraper(server, scrape_rate) as scraper:
                rate, _ = concurrent(server, token, n, clients)
            scraped = scraper.done
        else:
            rate, _ = concurrent(server, token, n, clients)
    return cpu.server_cpu / n, rate, scraped


def interleaved(server: Server, token: str, clients: int, rate: float, pairs: int,
                slice_s: float) -> tuple[float, float, float, int]:
    """(share, its 95 % half-interval, CPU per scrape, scrapes) with the scraper on and off in
    alternate slices while creates run all along."""
    done = [0] * clients
    stop, gate = threading.Event(), threading.Event()
    errors: list[BaseException] = []

    def run(k: int) -> None:
        client = Client(server, token)
        try:
            while not stop.is_set():
                client.create(f"slice-{k}-{done[k]}")
                done[k] += 1
        except BaseException as exc:  # noqa: BLE001
            errors.append(exc)
        finally:
            client.close()

    threads = [threading.Thread(target=run, args=(k,), daemon=True) for k in range(clients)]
    for t in threads:
        t.start()
    per_create: dict[bool, list[float]] = {True: [], False: []}
    cpu_on = creates_on = 0.0
    try:
        with Scraper(server, rate, gate=gate) as scraper:
            time.sleep(slice_s)       # the clients under way
            for p in range(pairs):
                for on in ((False, True) if p % 2 == 0 else (True, False)):
                    gate.set() if on else gate.clear()
                    cpu0, n0 = server.cpu_seconds(), sum(done)
                    time.sleep(slice_s)
                    cpu, n = server.cpu_seconds() - cpu0, sum(done) - n0
                    per_create[on].append(cpu / max(1, n))
                    if on:
                        cpu_on, creates_on = cpu_on + cpu, creates_on + n
            gate.clear()
            scrapes = scraper.done
    finally:
        stop.set()
        for t in threads:
            t.join()
    if errors:
        raise errors[0]
    # Per pair: the on slice's CPU per create over the off slice's, less one.
    ratios = [on / off - 1 for on, off in zip(per_create[True], per_create[False])]
    share = statistics.mean(ratios)
    half = 1.96 * statistics.stdev(ratios) / len(ratios) ** 0.5
    base = statistics.mean(per_create[False])
    per_scrape = max(0.0, cpu_on - creates_on * base) / max(1, scrapes)
    return share, half, per_scrape, scrapes


def main() -> None:
    p = base_parser(__doc__.splitlines()[0])
    p.add_argument("--rate", type=float, default=10.0, help="scrapes per second (default 10)")
    p.add_argument("--n", type=int, default=3000, help="creates per round and mode (default 3000)")
    p.add_argument("--clients", type=int, default=8, help="concurrent clients (default 8)")
    p.add_argument("--rounds", type=int, default=3, help="rounds of both modes (default 3)")
    p.add_argument("--seconds", type=float, default=20.0, help="length of the scrapes-alone run (default 20)")
    p.add_argument("--busy-rate", type=float, default=100.0,
                   help="scrapes per second in the interleaved run, the cost scaled to --rate (default 100)")
    p.add_argument("--pairs", type=int, default=30, help="on/off pairs of the interleaved run (default 30)")
    p.add_argument("--slice", type=float, default=2.0, help="seconds of each interleaved slice (default 2)")
    args = p.parse_args()
    with Server(args.data_root, args.keep) as server:
        maybe_pause(args, server)
        token = get_token(server)
        warm = Client(server, token)     # the create path warm, its samples there for the scrapes
        for i in range(300):
            warm.create(f"warm-{i}")
        warm.close()

        # The idle server's own CPU (job polls, heartbeats) is not the scrapes': measured
        # first, taken off.
        with CpuWatch(server) as idle_cpu:
            time.sleep(args.seconds)
        with CpuWatch(server) as scrape_cpu:
            with Scraper(server, args.rate) as scraper:
                time.sleep(args.seconds)
        per_scrape = max(0.0, scrape_cpu.server_cpu - idle_cpu.server_cpu) / max(1, scraper.done)
        print(f"scrapes alone: {scraper.done} in {args.seconds:g} s, server CPU {per_scrape * 1000:.2f} ms per scrape "
              f"({per_scrape * args.rate * 100:.2f} % of a core at {args.rate:g}/s; the idle server itself "
              f"{idle_cpu.server_cpu / args.seconds * 100:.2f} %)")
        with CpuWatch(server) as probe_cpu:
            with Scraper(server, args.rate, "/healthz") as prober:
                time.sleep(args.seconds)
        per_probe = max(0.0, probe_cpu.server_cpu - idle_cpu.server_cpu) / max(1, prober.done)
        own = max(0.0, per_scrape - per_probe)
        print(f"GET /healthz alone at the same rate: {per_probe * 1000:.2f} ms per request; the scrape's own part "
              f"{own * 1000:.2f} ms")

        plain, scraped, rates = [], [], {"plain": [], "scraped": []}
        for r in range(args.rounds):
            order = [None, args.rate] if r % 2 == 0 else [args.rate, None]
            for rate in order:
                cpu, per_second, done = creates(server, token, args.n, args.clients, rate)
                (scraped if rate else plain).append(cpu)
                rates["scraped" if rate else "plain"].append(per_second)
                print(f"  round {r + 1}, {'with' if rate else 'without'} scraping: {per_second:.1f} creates/s, "
                      f"server {cpu * 1e6:.0f} CPU-us per create" + (f", {done} scrapes" if rate else ""))
        cpu_plain, cpu_scraped = statistics.median(plain), statistics.median(scraped)
        create_rate = statistics.median(rates["plain"])
        # The server's CPU in a second of creates, against what `rate` scrapes cost in a second.
        share = per_scrape * args.rate / (cpu_plain * create_rate)
        own_share = own * args.rate / (cpu_plain * create_rate)
        direct = (cpu_scraped - cpu_plain) / cpu_plain
        print(f"create: {cpu_plain * 1e6:.0f} CPU-us per create without scraping, {cpu_scraped * 1e6:.0f} with "
              f"(medians of {args.rounds}; difference {direct * 100:+.2f} %)")
        print(f"scrapes at {args.rate:g}/s as an idle server pays them (1.): {share * 100:.2f} % of the server's CPU "
              f"while it creates at {create_rate:.0f}/s; the scrape's own part (less a /healthz's) "
              f"{own_share * 100:.2f} %")
        share, half, per_busy, scrapes = interleaved(server, token, args.clients, args.busy_rate, args.pairs,
                                                     args.slice)
        scale = args.rate / args.busy_rate
        print(f"interleaved ({args.pairs} pairs of {args.slice:g} s slices, {scrapes} scrapes): CPU per create "
              f"{share * 100:+.2f} % with scraping at {args.busy_rate:g}/s (95 % interval {(share - half) * 100:+.2f} "
              f"to {(share + half) * 100:+.2f} %), {per_busy * 1000:.2f} ms per scrape on the busy server")
        print(f"scraping at {args.rate:g}/s costs {share * scale * 100:+.2f} % of a create's CPU (95 % interval "
              f"{(share - half) * scale * 100:+.2f} to {(share + half) * scale * 100:+.2f} %; target < {TARGET * 100:g} %): "
              f"{'reached' if share * scale < TARGET else 'NOT reached'}"
              f"{'' if (share + half) * scale < TARGET else ' (the interval reaches past it: more --pairs narrow it)'}")


if __name__ == "__main__":
    main()
