"""Another project's latency and the server's memory while its S3 server hangs (issue 19, figure).

A one-node Swift s3api (scripts/swift-s3.sh) is the server's only image store, reached through
a proxy that this script switches to "stall" (connections accepted, never answered). Then, at
once, project "attacker" starts 45 downloads of its images (each client retries after the
Retry-After it gets, or 1 s) and 48 wrong Keystone logins (unknown user names: a password check
each, below the 100-per-minute brake of one address). Meanwhile project "victim" lists its images
in a loop, as it does in a baseline run of the same length without the attack (same server,
before). The downloads alone and the logins alone are run too, each after S3 answers again,
so each part's share shows. Prints the victim's list latency (p50, p99) in every run, how the
downloads and logins were answered and how long they took, and the server's peak RSS; the
figure holds when the list p99 under the whole attack is at most 2 x the baseline p99 and the
RSS stays under 300 MB.

    .venv/bin/python bench/hostile_backends.py [--seconds 20] [--downloads 45] [--logins 48]
                                               [--phases downloads,logins,both]
"""

from __future__ import annotations

import http.client
import json
import shutil
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from pathlib import Path
from urllib.parse import urlsplit

from _common import HOST, ROOT, VENV_BIN, Server, base_parser, maybe_pause, percentile

sys.path.insert(0, str(ROOT))
from tests.backend_proxy import FORWARD, STALL, BackendProxy  # noqa: E402
from tests.swift import start_swift  # noqa: E402

USERS = {"mallory": ("attacker", "mallory-pw"), "victor": ("victim", "victor-pw")}
IMAGE_BYTES = 4 << 20


def admin_cli(server: Server, *args: str) -> None:
    exe = VENV_BIN / "vmimage"
    cmd = [str(exe)] if exe.exists() else [sys.executable, "-m", "vmimage.cli.main"]
    subprocess.run(cmd + ["admin", "--data-dir", str(server.data_dir), *args], check=True,
                   capture_output=True, env={"VMIMAGE_ADMIN_PASSWORD": "admin", "PATH": "/usr/bin:/bin"})


def auth_body(user: str, password: str, project: str | None) -> bytes:
    body: dict = {"identity": {"methods": ["password"], "password": {"user": {
        "name": user, "password": password, "domain": {"id": "default"}}}}}
    if project:
        body["scope"] = {"project": {"name": project, "domain": {"id": "default"}}}
    return json.dumps({"auth": body}).encode()


def request(port: int, method: str, path: str, body: bytes | None = None, headers: dict | None = None,
            timeout: float = 120) -> tuple[int, bytes, dict]:
    conn = http.client.HTTPConnection(HOST, port, timeout=timeout)
    try:
        conn.request(method, path, body=body, headers=headers or {})
        resp = conn.getresponse()
        return resp.status, resp.read(), {k.lower(): v for k, v in resp.getheaders()}
    finally:
        conn.close()


def login(port: int, user: str) -> str:
    project, password = USERS[user]
    status, _, headers = request(port, "POST", "/identity/v3/auth/tokens", auth_body(user, password, project),
                                 {"Content-Type": "application/json"})
    if status != 201:
        raise RuntimeError(f"login of {user}: {status}")
    return headers["x-subject-token"]


def new_image(port: int, token: str, data: bytes | None = None) -> str:
    status, body, _ = request(port, "POST", "/v2/images", json.dumps(
        {"name": "bench", "disk_format": "raw", "container_format": "bare"}).encode(),
        {"X-Auth-Token": token, "Content-Type": "application/json"})
    if status != 201:
        raise RuntimeError(f"create: {status}")
    image_id = json.loads(body)["id"]
    if data is not None:
        status, _, _ = request(port, "PUT", f"/v2/images/{image_id}/file", data,
                               {"X-Auth-Token": token, "Content-Type": "application/octet-stream"})
        if status != 204:
            raise RuntimeError(f"upload: {status}")
    return image_id


class RssWatch:
    """The server's peak RSS (MiB), sampled every 0.1 s while running."""

    def __init__(self, server: Server) -> None:
        self.server, self.peak, self._stop = server, 0.0, threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _run(self) -> None:
        while not self._stop.is_set():
            self.peak = max(self.peak, self.server.rss_kb() / 1024)
            self._stop.wait(0.1)

    def __enter__(self) -> "RssWatch":
        self._thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self._stop.set()
        self._thread.join()


def list_loop(port: int, token: str, seconds: float, clients: int = 2) -> tuple[list[float], list[str]]:
    """The victim's image list in a loop on `clients` connections: latencies, failures."""
    latencies: list[float] = []
    errors: list[str] = []
    lock = threading.Lock()
    stop_at = time.monotonic() + seconds

    def run() -> None:
        conn = http.client.HTTPConnection(HOST, port, timeout=60)
        while time.monotonic() < stop_at:
            t0 = time.perf_counter()
            try:
                conn.request("GET", "/v2/images?limit=20", headers={"X-Auth-Token": token})
                resp = conn.getresponse()
                resp.read()
                ok = resp.status == 200
            except (OSError, http.client.HTTPException) as exc:
                conn.close()
                conn = http.client.HTTPConnection(HOST, port, timeout=60)
                ok, resp = False, exc
            with lock:
                if ok:
                    latencies.append(time.perf_counter() - t0)
                else:
                    errors.append(str(getattr(resp, "status", resp)))
        conn.close()

    threads = [threading.Thread(target=run) for _ in range(clients)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    return latencies, errors


def attack(port: int, token: str, images: list[str], downloads: int, logins: int, stop: threading.Event):
    """Downloads (retrying after Retry-After) and one wave of wrong logins; their outcomes."""
    outcomes: dict[str, list[tuple[int, float]]] = {"download": [], "login": []}
    lock = threading.Lock()

    def download(k: int) -> None:
        while not stop.is_set():
            t0 = time.perf_counter()
            try:
                status, _, headers = request(port, "GET", f"/v2/images/{images[k % len(images)]}/file",
                                             headers={"X-Auth-Token": token})
            except OSError:
                status, headers = -1, {}
            with lock:
                outcomes["download"].append((status, time.perf_counter() - t0))
            if status == 200:
                continue
            stop.wait(float(headers.get("retry-after", 1)))

    def wrong_login(k: int) -> None:
        t0 = time.perf_counter()
        try:
            status, _, _ = request(port, "POST", "/identity/v3/auth/tokens",
                                   auth_body(f"guess-{uuid.uuid4().hex[:8]}", "wrong", None),
                                   {"Content-Type": "application/json"})
        except OSError:
            status = -1
        with lock:
            outcomes["login"].append((status, time.perf_counter() - t0))

    threads = [threading.Thread(target=download, args=(k,), daemon=True) for k in range(downloads)]
    threads += [threading.Thread(target=wrong_login, args=(k,), daemon=True) for k in range(logins)]
    for t in threads:
        t.start()
    return threads, outcomes


def summary(values: list[float]) -> str:
    if not values:
        return "none"
    return (f"n={len(values)} p50 {percentile(values, 50) * 1000:.1f} ms  p99 {percentile(values, 99) * 1000:.1f} ms"
            f"  max {max(values) * 1000:.1f} ms")


def outcome_text(items: list[tuple[int, float]]) -> str:
    by_status: dict[int, list[float]] = {}
    for status, seconds in items:
        by_status.setdefault(status, []).append(seconds)
    return ", ".join(f"{status}: {len(v)} (p50 {percentile(v, 50):.2f} s, max {max(v):.2f} s)"
                     for status, v in sorted(by_status.items()))


def phase(server: Server, proxy: BackendProxy, mallory: str, victor: str, images: list[str], downloads: int,
          logins: int, args) -> tuple[list[float], list[str], float]:
    """One attack run with S3 stalled: the victim's list latencies, its failures, the peak RSS.
    S3 answers again after it, and the run waits until the store does (its breaker closed)."""
    proxy.set(STALL)
    stop = threading.Event()
    with RssWatch(server) as rss:
        started = time.monotonic()
        threads, outcomes = attack(server.port, mallory, images, downloads, logins, stop)
        under, errors = list_loop(server.port, victor, args.seconds)
        stop.set()
        for t in threads:
            t.join(timeout=60)
        elapsed = time.monotonic() - started
    print(f"== S3 stalled, {downloads} downloads + {logins} wrong logins ({elapsed:.0f} s): victim list "
          f"{summary(under)}, {len(errors)} failed; server RSS peak {rss.peak:.0f} MiB")
    if downloads:
        hung = [s for status, s in outcomes["download"] if status != 200]
        print(f"   downloads: {outcome_text(outcomes['download'])}; the first failed after "
              f"{min(hung, default=0):.1f}-{max(hung, default=0):.1f} s "
              f"(stall deadline: {args.stall_seconds or 15:g} s)")
    if logins:
        print(f"   wrong logins: {outcome_text(outcomes['login'])}")
    proxy.set(FORWARD)
    deadline = time.monotonic() + 120
    while request(server.port, "GET", f"/v2/images/{images[0]}/file", headers={"X-Auth-Token": mallory})[0] != 200:
        if time.monotonic() > deadline:
            raise RuntimeError("the store did not recover")
        time.sleep(1)
    return under, errors, rss.peak


def main() -> int:
    p = base_parser(__doc__)
    p.add_argument("--seconds", type=float, default=20.0, help="length of each run (default 20)")
    p.add_argument("--downloads", type=int, default=45)
    p.add_argument("--logins", type=int, default=48)
    p.add_argument("--phases", default="downloads,logins,both",
                   help="attack runs to make, in order (the figure is the last one's)")
    p.add_argument("--stall-seconds", type=float, default=None,
                   help="VMIMAGE_BACKEND_STALL_SECONDS for the server (default: the server's own, 15)")
    args = p.parse_args()

    swift_dir = Path(tempfile.mkdtemp(prefix="vmimage-bench-swift-", dir=args.data_root))
    swift = start_swift(swift_dir)
    where = urlsplit(swift.endpoint)
    proxy = BackendProxy(where.hostname or HOST, where.port or 80)
    bucket = f"bench-{uuid.uuid4().hex[:8]}"
    env = {**swift.env, "VMIMAGE_S3_ENDPOINT": proxy.endpoint, "VMIMAGE_STORES": f"obj=s3://{bucket}/imgs",
           "VMIMAGE_CACHE_ENABLED": "false"}      # every download goes to S3
    if args.stall_seconds is not None:
        env["VMIMAGE_BACKEND_STALL_SECONDS"] = str(args.stall_seconds)
    ok = True
    try:
        with Server(args.data_root, args.keep, env_for=lambda _d: env) as server:
            for user, (project, password) in USERS.items():
                admin_cli(server, "project", "create", project)
                admin_cli(server, "user", "create", user, "--project", project, "--role", "member",
                          "--password", password)
            maybe_pause(args, server)
            mallory, victor = login(server.port, "mallory"), login(server.port, "victor")
            images = [new_image(server.port, mallory, bytes([k]) * IMAGE_BYTES) for k in range(3)]
            for _ in range(20):
                new_image(server.port, victor)

            with RssWatch(server) as quiet_rss:
                base, base_errors = list_loop(server.port, victor, args.seconds)
            print(f"== baseline ({args.seconds:.0f} s, S3 answering): victim list {summary(base)}, "
                  f"{len(base_errors)} failed; server RSS peak {quiet_rss.peak:.0f} MiB", flush=True)
            phases = {"downloads": ("downloads alone", args.downloads, 0),
                      "logins": ("wrong logins alone", 0, args.logins), "both": ("both", args.downloads, args.logins)}
            for name, downloads, logins in (phases[k.strip()] for k in args.phases.split(",")):
                under, errors, peak = phase(server, proxy, mallory, victor, images, downloads, logins, args)
                ratio = percentile(under, 99) / percentile(base, 99)
                print(f"   victim list p99 x{ratio:.2f} the baseline's ({name})", flush=True)
            p99_base, p99_under = percentile(base, 99), percentile(under, 99)
            ratio = p99_under / p99_base if p99_base else float("inf")
            print(f"victim list p99: {p99_base * 1000:.1f} ms without, {p99_under * 1000:.1f} ms with the "
                  f"attack ({name}: x{ratio:.2f}; figure: <= x2); RSS peak {peak:.0f} MiB (figure: < 300)")
            ok = ratio <= 2 and peak < 300 and not errors
    finally:
        proxy.close()
        swift.stop()
        if not args.keep:
            shutil.rmtree(swift_dir, ignore_errors=True)
    print("HOLDS" if ok else "DOES NOT HOLD")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
