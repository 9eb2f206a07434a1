"""Concurrent wrong logins against one server: another project's image list (p50/p99) quiet and
while N wrong Keystone logins from one address run at once (below its brake of 100 a minute),
the server's resident set before and at its peak (VmHWM), and what the logins got (401 checked,
429 refused after waiting in line).

    .venv/bin/python bench/login_flood.py [--wrong 48] [--lists 200]

VMIMAGE_BENCH_SERVER=... runs another build (before/after); VMIMAGE_PASSWORD_CHECKS and
VMIMAGE_PASSWORD_CHECK_WAIT_SECONDS in the environment reach the server.
"""

from __future__ import annotations

import collections
import http.client
import json
import threading
import time

from _common import HOST, CpuWatch, Server, base_parser, get_token, maybe_pause, summary_ms

WRONG = {"auth": {"identity": {"methods": ["password"], "password": {"user": {
    "name": "", "password": "wrong", "domain": {"id": "default"}}}}}}


def status_line(server: Server) -> dict[str, int]:
    with open(f"/proc/{server.pid}/status") as f:
        return {k: int(v.split()[0]) for k, v in (line.split(":", 1) for line in f) if k in ("VmRSS", "VmHWM")}


def lists(server: Server, token: str, stop: threading.Event | None, n: int) -> list[float]:
    """The admin project's image list on one keep-alive connection, n times or until stop."""
    conn = http.client.HTTPConnection(HOST, server.port, timeout=60)
    took: list[float] = []
    while (stop is None and len(took) < n) or (stop is not None and not stop.is_set()):
        t0 = time.perf_counter()
        conn.request("GET", "/v2/images", headers={"X-Auth-Token": token})
        resp = conn.getresponse()
        resp.read()
        took.append(time.perf_counter() - t0)
        if resp.status != 200:
            raise RuntimeError(f"list failed: {resp.status}")
        time.sleep(0.01)
    conn.close()
    return took


def wrong_login(server: Server, name: str, start: threading.Barrier, out: list) -> None:
    body = json.loads(json.dumps(WRONG))
    body["auth"]["identity"]["password"]["user"]["name"] = name
    conn = http.client.HTTPConnection(HOST, server.port, timeout=120)
    start.wait()
    t0 = time.perf_counter()
    conn.request("POST", "/identity/v3/auth/tokens", body=json.dumps(body), headers={"Content-Type": "application/json"})
    resp = conn.getresponse()
    resp.read()
    out.append((resp.status, time.perf_counter() - t0))
    conn.close()


def main() -> None:
    p = base_parser(__doc__)
    p.add_argument("--wrong", type=int, default=48, help="concurrent wrong logins (under 100: the brake)")
    p.add_argument("--lists", type=int, default=200, help="quiet lists measured")
    args = p.parse_args()
    with Server(args.data_root, args.keep) as server:
        print(f"server PID {server.pid}, port {server.port}")
        token = get_token(server)
        lists(server, token, None, 50)                     # warm
        maybe_pause(args, server)
        quiet = lists(server, token, None, args.lists)
        before = status_line(server)
        stop, during = threading.Event(), []
        other = threading.Thread(target=lambda: during.extend(lists(server, token, stop, 0)))
        start = threading.Barrier(args.wrong + 1)
        results: list[tuple[int, float]] = []
        logins = [threading.Thread(target=wrong_login, args=(server, f"guess-{i}", start, results))
                  for i in range(args.wrong)]
        with CpuWatch(server) as cpu:
            other.start()
            for t in logins:
                t.start()
            start.wait()
            t0 = time.perf_counter()
            for t in logins:
                t.join()
            flood = time.perf_counter() - t0
            stop.set()
            other.join()
        after = status_line(server)
    codes = collections.Counter(code for code, _ in results)
    print(f"other project's list, quiet:         {summary_ms(quiet)}")
    print(f"other project's list, under {args.wrong} logins: {summary_ms(during)} ({len(during)} lists)")
    print(f"{args.wrong} wrong logins over in {flood:.1f} s: " + ", ".join(f"{n} x {c}" for c, n in sorted(codes.items()))
          + f"; login latency {summary_ms([t for _, t in results])}")
    print(f"server RSS {before['VmRSS'] / 1024:.0f} MiB before, peak {after['VmHWM'] / 1024:.0f} MiB "
          f"(peak before the flood {before['VmHWM'] / 1024:.0f} MiB); {cpu.text()}")


if __name__ == "__main__":
    main()
