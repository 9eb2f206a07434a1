"""A small import of one project behind another project's backlog of big imports (issue 19, item 4).

A web server in this process serves /small (64 KiB at once) and /big/N (--big-mib MiB of raw
data at --rate MiB/s each, so one big import takes a known while). Project "b" web-downloads the
small image alone (--repeat times, fresh images); then project "a" submits --backlog big
web-downloads and, right after, "b" submits the small one again. Prints b's latency (the POST
/import to the image reading `active`, polled every 20 ms) alone and behind the backlog, and
how far a's backlog had got when b's import was done. The server keeps its default job
settings unless --job-workers / --jobs-per-project are given.

    .venv/bin/python bench/job_fairness.py [--backlog 16] [--big-mib 16] [--rate 8] [--repeat 3]

Before/after: VMIMAGE_BENCH_SERVER="env -C /tmp PYTHONPATH=/other/checkout .venv/bin/python -m
vmimage.cli" runs another checkout's server (`-m` puts the working directory first on the path,
hence -C). One run on a loaded 2-core machine, default settings (2 job workers): before (one
FIFO line) b's import took 20.5 s behind the backlog (0.17 s alone), after it 2.2 s (0.31 s
alone), the time of one of a's imports to end and free a worker.
"""

from __future__ import annotations

import http.client
import http.server
import json
import os
import statistics
import subprocess
import sys
import threading
import time

from _common import HOST, VENV_BIN, Server, base_parser, maybe_pause

MIB = 1 << 20
SMALL = b"\0" * (64 << 10)
USERS = {"alice": "a", "bob": "b"}       # user: project (the password is the user's name)


def web_server(big_bytes: int, rate: float) -> http.server.ThreadingHTTPServer:
    class Handler(http.server.BaseHTTPRequestHandler):
        def do_GET(self):  # noqa: N802
            body_len = big_bytes if self.path.startswith("/big/") else len(SMALL)
            self.send_response(200)
            self.send_header("Content-Length", str(body_len))
            self.end_headers()
            if not self.path.startswith("/big/"):
                self.wfile.write(SMALL)
                return
            block, sent, t0 = b"\0" * (256 << 10), 0, time.monotonic()
            try:
                while sent < big_bytes:
                    self.wfile.write(block[:big_bytes - sent])
                    sent += min(len(block), big_bytes - sent)
                    ahead = sent / (rate * MIB) - (time.monotonic() - t0)
                    if ahead > 0:
                        time.sleep(ahead)
            except OSError:
                pass

        def log_message(self, *args):
            pass

    httpd = http.server.ThreadingHTTPServer((HOST, 0), Handler)
    httpd.daemon_threads = True
    threading.Thread(target=httpd.serve_forever, daemon=True).start()
    return httpd


def admin_cli(server: Server, *args: str) -> None:
    exe = VENV_BIN / "vmimage"
    cmd = [str(exe)] if exe.exists() else [sys.executable, "-m", "vmimage.cli.main"]
    env = {"VMIMAGE_ADMIN_PASSWORD": "admin", "PATH": "/usr/bin:/bin"}
    if os.environ.get("PYTHONPATH"):       # the same checkout as the server's, whose schema it must know
        env["PYTHONPATH"] = os.environ["PYTHONPATH"]
    subprocess.run(cmd + ["admin", "--data-dir", str(server.data_dir), *args], check=True,
                   capture_output=True, env=env)


class Client:
    def __init__(self, server: Server, user: str) -> None:
        self.server = server
        body = json.dumps({"auth": {
            "identity": {"methods": ["password"], "password": {"user": {
                "name": user, "password": user, "domain": {"id": "default"}}}},
            "scope": {"project": {"name": USERS[user], "domain": {"id": "default"}}}}})
        status, _, headers = self.call("POST", "/identity/v3/auth/tokens", body, token=False)
        if status != 201:
            raise RuntimeError(f"login of {user}: {status}")
        self.token = headers["X-Subject-Token"]

    def call(self, method: str, path: str, body: str | None = None,
             token: bool = True) -> tuple[int, dict, http.client.HTTPMessage]:
        conn = http.client.HTTPConnection(HOST, self.server.port, timeout=120)
        headers = {"Content-Type": "application/json", **({"X-Auth-Token": self.token} if token else {})}
        conn.request(method, path, body=body, headers=headers)
        resp = conn.getresponse()
        data = resp.read()
        conn.close()
        return resp.status, (json.loads(data) if data else {}), resp.msg

    def submit(self, name: str, uri: str) -> str:
        status, image, _ = self.call("POST", "/v2/images", json.dumps(
            {"name": name, "disk_format": "raw", "container_format": "bare"}))
        if status != 201:
            raise RuntimeError(f"create: {status} {image}")
        status, body, _ = self.call("POST", f"/v2/images/{image['id']}/import",
                                    json.dumps({"method": {"name": "web-download", "uri": uri}}))
        if status != 202:
            raise RuntimeError(f"import: {status} {body}")
        return image["id"]

    def status(self, image_id: str) -> str:
        image = self.call("GET", f"/v2/images/{image_id}")[1]
        if image.get("os_glance_failed_import"):
            raise RuntimeError(f"import failed: {image}")
        return image["status"]

    def wait_active(self, image_id: str, timeout: float = 600) -> None:
        deadline = time.monotonic() + timeout
        while self.status(image_id) != "active":
            if time.monotonic() > deadline:
                raise RuntimeError(f"{image_id} not active after {timeout} s")
            time.sleep(0.02)


def small_import(b: Client, url: str, name: str) -> float:
    t0 = time.perf_counter()
    image_id = b.submit(name, f"{url}/small")
    b.wait_active(image_id)
    return time.perf_counter() - t0


def main() -> None:
    p = base_parser(__doc__)
    p.add_argument("--backlog", type=int, default=16, help="project a's big imports")
    p.add_argument("--big-mib", type=int, default=16)
    p.add_argument("--rate", type=float, default=8.0, help="MiB/s of each big download")
    p.add_argument("--repeat", type=int, default=3, help="runs of b's import alone")
    p.add_argument("--job-workers", type=int, default=None)
    p.add_argument("--jobs-per-project", type=int, default=None)
    args = p.parse_args()
    web = web_server(args.big_mib * MIB, args.rate)
    url = f"http://{HOST}:{web.server_address[1]}"
    env = {"VMIMAGE_WEB_DOWNLOAD_ALLOW": HOST}
    if args.job_workers is not None:
        env["VMIMAGE_JOB_WORKERS"] = str(args.job_workers)
    if args.jobs_per_project is not None:
        env["VMIMAGE_JOBS_PER_PROJECT"] = str(args.jobs_per_project)
    with Server(args.data_root, args.keep, env_for=lambda _d: env) as server:
        for user, project in USERS.items():
            admin_cli(server, "project", "create", project)
            admin_cli(server, "user", "create", user, "--project", project, "--password", user)
        a, b = Client(server, "alice"), Client(server, "bob")
        maybe_pause(args, server)
        alone = [small_import(b, url, f"alone-{i}") for i in range(args.repeat)]
        print(f"b's small import alone: median {statistics.median(alone):.2f} s "
              f"(runs: {', '.join(f'{x:.2f}' for x in alone)})", flush=True)

        t0 = time.perf_counter()
        backlog = [a.submit(f"big-{i}", f"{url}/big/{i}") for i in range(args.backlog)]
        submitted = time.perf_counter() - t0
        behind = small_import(b, url, "behind")
        states = [a.status(i) for i in backlog]
        one_big = args.big_mib / args.rate
        print(f"b's small import behind a's backlog of {args.backlog} big imports ({args.big_mib} MiB at "
              f"{args.rate:g} MiB/s, {one_big:.1f} s each; submitted in {submitted:.2f} s): {behind:.2f} s, "
              f"{behind / statistics.median(alone):.1f} x alone", flush=True)
        print(f"a's backlog when b's import was done: {states.count('active')} active, "
              f"{states.count('importing')} importing (waiting or running)", flush=True)
        t1 = time.perf_counter()
        for image_id in backlog:
            a.wait_active(image_id)
        print(f"a's backlog done {time.perf_counter() - t1 + behind:.1f} s after b's import began")
    web.shutdown()


if __name__ == "__main__":
    main()
