"""The 50-client load run with 45 stalled uploads open (issue 11, item 2).

One member of project "attacker" starts 45 `PUT /v2/images/{id}/file` (Content-Length
1,000,000, 1,000 bytes sent, then silence) and keeps the sockets open. Meanwhile 50 clients of
ten other projects (five clients each) loop for --seconds: list, create, upload 64 KiB, show,
download, and log in again every fifth round. Prints how the stalled uploads were answered (429 at once beyond the
per-project cap, the rest held until the idle timeout) and per-operation latencies, first of a
baseline run without stalled uploads (same load, fresh server) for comparison; exits 1 when any
request of the 50 clients failed or took longer than --max-seconds.

    .venv/bin/python bench/stalled_uploads.py [--clients 50] [--stalled 45] [--seconds 20]
"""

from __future__ import annotations

import http.client
import json
import socket
import subprocess
import sys
import threading
import time

from _common import HOST, VENV_BIN, CpuWatch, Server, base_parser, maybe_pause, percentile

PROJECTS = 10
PASSWORDS = {"mallory": "mallory", **{f"user{i}": f"user{i}" for i in range(PROJECTS)}}
PROJECT_OF = {"mallory": "attacker", **{f"user{i}": f"project{i}" for i in range(PROJECTS)}}
UPLOAD = b"\x5a" * (64 << 10)


def admin_cli(server: Server, *args: str) -> None:
    exe = VENV_BIN / "vmimage"
    cmd = [str(exe)] if exe.exists() else [sys.executable, "-m", "vmimage.cli.main"]
    subprocess.run(cmd + ["admin", "--data-dir", str(server.data_dir), *args], check=True,
                   capture_output=True, env={"VMIMAGE_ADMIN_PASSWORD": "admin", "PATH": "/usr/bin:/bin"})


def auth(user: str) -> bytes:
    return json.dumps({"auth": {
        "identity": {"methods": ["password"], "password": {"user": {
            "name": user, "password": PASSWORDS[user], "domain": {"id": "default"}}}},
        "scope": {"project": {"name": PROJECT_OF[user], "domain": {"id": "default"}}}}}).encode()


class Conn:
    def __init__(self, server: Server, timeout: float) -> None:
        self.server, self.timeout = server, timeout
        self.conn = http.client.HTTPConnection(HOST, server.port, timeout=timeout)
        self.token = ""

    def call(self, method: str, path: str, body: bytes | None = None,
             headers: dict[str, str] | None = None) -> tuple[int, bytes, http.client.HTTPResponse]:
        h = {"X-Auth-Token": self.token, **(headers or {})}
        try:
            self.conn.request(method, path, body=body, headers=h)
            resp = self.conn.getresponse()
            return resp.status, resp.read(), resp
        except (OSError, http.client.HTTPException):
            self.conn.close()
            self.conn = http.client.HTTPConnection(HOST, self.server.port, timeout=self.timeout)
            raise

    def login(self, user: str) -> None:
        status, _, resp = self.call("POST", "/identity/v3/auth/tokens", auth(user),
                                    {"Content-Type": "application/json"})
        if status != 201:
            raise RuntimeError(f"login {status}")
        self.token = resp.getheader("X-Subject-Token")


def stall(server: Server, token: str, image_id: str) -> socket.socket:
    sock = socket.create_connection((HOST, server.port))
    sock.sendall((f"PUT /v2/images/{image_id}/file HTTP/1.1\r\nHost: x\r\nX-Auth-Token: {token}\r\n"
                  "Content-Type: application/octet-stream\r\nContent-Length: 1000000\r\n\r\n").encode()
                 + b"\0" * 1000)
    return sock


def answered(sock: socket.socket) -> int | None:
    """The status the server sent on a stalled socket, or None while it says nothing."""
    sock.setblocking(False)
    try:
        data = sock.recv(4096)
    except BlockingIOError:
        return None
    finally:
        sock.setblocking(True)
    return int(data.split()[1]) if data else -1


def load(server: Server, clients: int, seconds: float, timeout: float):
    """clients threads of ten projects for seconds: (latencies by operation, errors, CpuWatch)."""
    latencies: dict[str, list[float]] = {}
    errors: list[str] = []
    lock = threading.Lock()
    stop_at = time.monotonic() + seconds

    def timed(op: str, fn) -> None:
        t0 = time.perf_counter()
        try:
            fn()
        except Exception as exc:  # noqa: BLE001
            with lock:
                errors.append(f"{op}: {type(exc).__name__} {exc}")
            return
        with lock:
            latencies.setdefault(op, []).append(time.perf_counter() - t0)

    def expect(status: int, want: int, what: str) -> None:
        if status != want:
            raise RuntimeError(f"{what} answered {status}")

    def client(k: int) -> None:
        user = f"user{k % PROJECTS}"
        conn = Conn(server, timeout)
        rounds = 0
        while time.monotonic() < stop_at:
            if rounds % 5 == 0:
                timed("token", lambda: conn.login(user))
            rounds += 1
            timed("list", lambda: expect(conn.call("GET", "/v2/images?limit=20")[0], 200, "list"))
            created: list[str] = []

            def create_and_upload() -> None:
                status, body, _ = conn.call("POST", "/v2/images", json.dumps(
                    {"disk_format": "raw", "container_format": "bare"}).encode(),
                    {"Content-Type": "application/json"})
                expect(status, 201, "create")
                created.append(json.loads(body)["id"])
                expect(conn.call("PUT", f"/v2/images/{created[0]}/file", UPLOAD,
                                 {"Content-Type": "application/octet-stream"})[0], 204, "upload")
            timed("create+upload", create_and_upload)
            if created:
                timed("show", lambda: expect(conn.call("GET", f"/v2/images/{created[0]}")[0], 200, "show"))
                timed("download", lambda: expect(conn.call("GET", f"/v2/images/{created[0]}/file")[0],
                                                 200, "download"))

    with CpuWatch(server) as cpu:
        threads = [threading.Thread(target=client, args=(k,)) for k in range(clients)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
    return latencies, errors, cpu


def run(args, stalled: int) -> bool:
    with Server(args.data_root, args.keep) as server:
        for user, project in PROJECT_OF.items():
            admin_cli(server, "project", "create", project)
            admin_cli(server, "user", "create", user, "--project", project, "--role", "member",
                      "--password", PASSWORDS[user])
        maybe_pause(args, server)
        mallory = Conn(server, 30)
        mallory.login("mallory")
        images = []
        for _ in range(stalled):
            status, body, _ = mallory.call("POST", "/v2/images", json.dumps(
                {"disk_format": "raw", "container_format": "bare"}).encode(), {"Content-Type": "application/json"})
            images.append(json.loads(body)["id"])
        sockets = [stall(server, mallory.token, i) for i in images]
        time.sleep(1.0)
        first = [answered(s) for s in sockets]
        print(f"== {stalled} stalled uploads of one project: {sum(1 for a in first if a == 429)} answered "
              f"429 at once, {first.count(None)} hanging")
        latencies, errors, cpu = load(server, args.clients, args.seconds, args.max_seconds)
        still = [answered(s) for s in sockets]
        for s in sockets:
            s.close()
    total = sum(len(v) for v in latencies.values())
    print(f"{args.clients} clients of {PROJECTS} other projects for {cpu.wall:.1f} s: {total} requests "
          f"({total / cpu.wall:.1f}/s), {len(errors)} failed; {cpu.text()}")
    for op, values in sorted(latencies.items()):
        print(f"  {op:14s} n={len(values):5d}  p50 {percentile(values, 50) * 1000:7.1f} ms  "
              f"p99 {percentile(values, 99) * 1000:7.1f} ms  max {max(values) * 1000:7.1f} ms")
    if stalled:
        print(f"stalled uploads still hanging after the run: {still.count(None)} "
              f"(the idle timeout, 60 s by default, ends them)")
    for line in errors[:10]:
        print("  error:", line)
    return not errors


def main() -> int:
    p = base_parser(__doc__)
    p.add_argument("--clients", type=int, default=50)
    p.add_argument("--stalled", type=int, default=45)
    p.add_argument("--seconds", type=float, default=20)
    p.add_argument("--max-seconds", type=float, default=20.0,
                   help="a client's request that takes longer fails (timeout)")
    p.add_argument("--no-baseline", action="store_true", help="skip the run without stalled uploads")
    args = p.parse_args()
    ok = True
    if not args.no_baseline:
        run(args, 0)
    ok = run(args, args.stalled)
    print("HOLDS: no request of the other projects failed or timed out" if ok else "DOES NOT HOLD")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
