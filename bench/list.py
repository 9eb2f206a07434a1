"""Listing speed: GET /v2/images?limit=1000 over 10,000 stored images (or 1,000,000 on
PostgreSQL with --postgres).

Setup (not measured): 10,000 images created through the API by concurrent clients; with
--postgres, a fresh database on that server and the images inserted there with one SQL
statement (generate_series), then ANALYZE: creating 1,000,000 through the API would take an hour.
Measured on one keep-alive connection (time to the last byte of the body; the client's
JSON parse is outside the timing): the first page, a middle page (marker = the 5,000th
image), each ~20 times, and walking all pages with the marker. With --glance, upstream Glance
(Debian's glance-api, SQLite, no Keystone: scripts/glance-peer.sh) runs beside vmimage and gets
the same images through its API (about 6 minutes at its ~30 creates/s), then both are measured
one right after the other, and the ratio is to Glance's figure.

    .venv/bin/python bench/list.py [--images 10000] [--reps 20] [--glance]
    .venv/bin/python bench/list.py --postgres postgresql://postgres@127.0.0.1:5432/test --images 1000000
"""

from __future__ import annotations

import contextlib
import http.client
import json
import statistics
import time
from urllib.parse import urlencode

from collections.abc import Callable

from _common import HOST, CpuWatch, Server, auth_headers, base_parser, get_token, maybe_pause, percentile, populate

TARGET_MS = 40.0
PG_TARGET_MS = 50.0
GLANCE_MS = 339.0           # measured earlier (--glance measures it in the run)
PAGE = 1000


class Lister:
    def __init__(self, server, token: str | None) -> None:
        self.conn = http.client.HTTPConnection(HOST, server.port, timeout=120)
        self.headers = auth_headers(token)

    def page(self, marker: str | None = None) -> tuple[float, dict]:
        q = {"limit": PAGE}
        if marker:
            q["marker"] = marker
        t0 = time.perf_counter()
        self.conn.request("GET", "/v2/images?" + urlencode(q), headers=self.headers)
        resp = self.conn.getresponse()
        data = resp.read()
        elapsed = time.perf_counter() - t0
        if resp.status != 200:
            raise RuntimeError(f"list failed: {resp.status} {data[:300]!r}")
        return elapsed, json.loads(data)

    def walk(self) -> tuple[float, list[float], list[str]]:
        marker, times, ids = None, [], []
        t0 = time.perf_counter()
        while True:
            elapsed, body = self.page(marker)
            times.append(elapsed)
            ids.extend(i["id"] for i in body["images"])
            if "next" not in body or not body["images"]:
                break
            marker = body["images"][-1]["id"]
        return time.perf_counter() - t0, times, ids


def fresh_database(admin_url: str) -> tuple[str, "Callable[[], None]"]:
    import uuid

    import psycopg

    name = f"vmimage_bench_{uuid.uuid4().hex[:10]}"
    with psycopg.connect(admin_url, autocommit=True) as conn:
        conn.execute(f'CREATE DATABASE "{name}"')

    def drop() -> None:
        with psycopg.connect(admin_url, autocommit=True) as conn:
            conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
    base = admin_url.rsplit("/", 1)[0]
    return f"{base}/{name}", drop


def bulk_insert(url: str, n: int) -> float:
    """n active images of the admin project, straight into the database; seconds taken."""
    import psycopg

    t0 = time.perf_counter()
    with psycopg.connect(url, autocommit=True) as conn:
        owner = conn.execute("SELECT id FROM projects WHERE name = 'admin'").fetchone()[0]
        start = conn.execute("SELECT coalesce(max(seq), 0) FROM images").fetchone()[0]
        conn.execute(
            "INSERT INTO images (id, owner, name, status, visibility, protected, os_hidden, disk_format,"
            " container_format, min_disk, min_ram, size, virtual_size, kind, source, created_at, updated_at,"
            " seq, ref) SELECT gen_random_uuid()::text, %(owner)s, 'img-' || i, 'active', 'shared', false,"
            " false, 'raw', 'bare', 0, 0, 1024, 1024, 'system_disk', 'upload',"
            " now() - make_interval(secs => i), now(), %(start)s + i, 'img-b' || lpad(i::text, 11, '0')"
            " FROM generate_series(1, %(n)s) AS i", {"owner": owner, "start": start, "n": n})
        conn.execute("ANALYZE images")
    return time.perf_counter() - t0


def describe(times_s: list[float]) -> tuple[float, float, str]:
    ms = [t * 1000 for t in times_s]
    mean, p50 = statistics.fmean(ms), percentile(ms, 50)
    return mean, p50, f"mean {mean:.1f} ms, p50 {p50:.1f} ms, min {min(ms):.1f}, max {max(ms):.1f}"


def main() -> None:
    p = base_parser(__doc__)
    p.add_argument("--images", type=int, default=10000)
    p.add_argument("--reps", type=int, default=20)
    p.add_argument("--walks", type=int, default=3)
    p.add_argument("--clients", type=int, default=8, help="concurrent clients for the setup")
    p.add_argument("--glance", action="store_true",
                   help="measure upstream Glance too, in the same run (needs Debian's glance-api)")
    p.add_argument("--postgres", metavar="ADMIN_URL", default=None,
                   help="run on a fresh database of this PostgreSQL server, images inserted in bulk")
    args = p.parse_args()

    env, drop, target = {}, lambda: None, TARGET_MS
    if args.postgres:
        url, drop = fresh_database(args.postgres)
        env = {"VMIMAGE_DATABASE_URL": url.replace("postgresql://", "postgresql+psycopg://")}
        target = PG_TARGET_MS
    try:
        run(args, env, target)
    finally:
        drop()


def run(args, env: dict, target: float) -> None:
    with contextlib.ExitStack() as stack:
        server = stack.enter_context(Server(args.data_root, args.keep, env_for=lambda _d: env))
        print(f"server PID {server.pid}, port {server.port}")
        token = get_token(server)
        if args.postgres:
            took = bulk_insert(env["VMIMAGE_DATABASE_URL"].replace("+psycopg", ""), args.images)
            print(f"  setup: {args.images} images inserted in bulk in {took:.1f} s")
        else:
            took = populate(server, token, args.images, args.clients)
            print(f"  setup: {args.images} images created in {took:.1f} s ({args.images / took:.0f}/s)")
        if args.glance:     # both filled first, then measured one right after the other
            from _glance import GlancePeer
            glance = stack.enter_context(GlancePeer(args.data_root, args.keep))
            print(f"Glance (glance-api) PIDs {glance.pids()}, port {glance.port}")
            took = populate(glance, None, args.images, args.clients)
            print(f"  Glance setup: {args.images} images created in {took:.1f} s ({args.images / took:.0f}/s)")
        print("vmimage:")
        all_mean, all_p50, f_p50, m_p50, w_p50 = measure(server, token, args)
        if args.glance:
            print("Glance:")
            g_mean, glance_ms, g_first, g_mid, g_walk = measure(glance, None, args)
    print(f"list: {all_mean:.1f} ms mean / {all_p50:.1f} ms p50 per 1,000-image page "
          f"(first {f_p50:.1f}, middle {m_p50:.1f}, walk {w_p50:.1f}); ratio target/measured "
          f"{target / all_p50:.2f} (target {target:.0f} ms, >= 1.00)")
    if args.glance:
        print(f"Glance: {g_mean:.1f} ms mean / {glance_ms:.1f} ms p50 per 1,000-image page "
              f"(first {g_first:.1f}, middle {g_mid:.1f}, walk {g_walk:.1f})")
        print(f"list vs Glance in this run: p50 {all_p50:.1f} ms vs {glance_ms:.1f} ms: "
              f"{glance_ms / all_p50:.1f}x faster")
    else:
        print(f"list vs Glance's {GLANCE_MS:.0f} ms measured earlier: {GLANCE_MS / all_p50:.1f}x faster")


def measure(server, token: str | None, args) -> tuple[float, float, float, float, float]:
    """(mean, p50 of first + middle pages, p50 first, p50 middle, p50 walk), in ms; prints the details."""
    lister = Lister(server, token)
    _, _, ids = lister.walk()                      # warm-up, and the marker list
    assert len(ids) == args.images and len(set(ids)) == args.images, len(ids)
    middle = ids[len(ids) // 2 - 1]
    maybe_pause(args, server)

    watch = CpuWatch(server).__enter__()
    first = [lister.page()[0] for _ in range(args.reps)]
    mid = []
    for _ in range(args.reps):
        elapsed, body = lister.page(middle)
        assert len(body["images"]) == PAGE
        mid.append(elapsed)
    walk_pages, walk_totals = [], []
    for _ in range(args.walks):
        total, times, ids2 = lister.walk()
        assert ids2 == ids
        walk_totals.append(total)
        walk_pages.extend(times[: args.images // PAGE])   # full pages only
    lister.conn.close()
    watch.__exit__()

    f_mean, f_p50, f_txt = describe(first)
    m_mean, m_p50, m_txt = describe(mid)
    w_mean, w_p50, w_txt = describe(walk_pages)
    print(f"  first page ({args.reps}x): {f_txt}")
    print(f"  middle page, marker #{len(ids) // 2} ({args.reps}x): {m_txt}")
    print(f"  walk all {len(ids)} images ({args.walks}x): {statistics.fmean(walk_totals) * 1000:.0f} ms "
          f"per walk; per full page {w_txt}")
    print(f"  during the measurements: {watch.text()}", flush=True)
    all_p50 = percentile([t * 1000 for t in first + mid], 50)
    all_mean = statistics.fmean([t * 1000 for t in first + mid])
    return all_mean, all_p50, f_p50, m_p50, w_p50


if __name__ == "__main__":
    main()
