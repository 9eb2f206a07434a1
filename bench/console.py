"""The web console's two figures (issue 24), in a real browser (Playwright driving Debian's
chromium, as tests/api/test_console.py):

1. With --images (10,000) images in the project, the images page shows its first rows within
   1 s of navigation: a fresh page load of /console/#/images (the session already in
   sessionStorage, as after a reload), timed from the navigation's start to the first table row
   in the DOM; --reps times, median and worst.
2. A --mib (256) MiB upload through the console (dialog: Name, Disk format, Image file, Upload;
   timed from the click to "is active": the image's create, the streamed PUT and the show)
   against `curl -T` of the same file to a fresh image (the PUT alone), alternating, --uploads
   times each; the ratio is curl's median time over the console's (≥ 0.8 wanted).

    .venv/bin/python bench/console.py [--images 10000] [--reps 10] [--mib 256] [--uploads 3]
"""

from __future__ import annotations

import json
import os
import statistics
import subprocess
import tempfile
import time
import urllib.request
from pathlib import Path

from _common import CpuWatch, Server, base_parser, get_token, maybe_pause, populate

CHROMIUM = os.environ.get("VMIMAGE_CHROMIUM", "/usr/bin/chromium")
FIRST_ROWS_TARGET_S = 1.0
UPLOAD_RATIO_TARGET = 0.8


def create_image(server: Server, token: str, name: str) -> str:
    req = urllib.request.Request(f"{server.base}/v2/images", method="POST", data=json.dumps(
        {"name": name, "disk_format": "raw", "container_format": "bare"}).encode(),
        headers={"X-Auth-Token": token, "Content-Type": "application/json"})
    with urllib.request.urlopen(req) as resp:
        return json.load(resp)["id"]


def curl_upload(server: Server, token: str, path: Path, n: int) -> float:
    image_id = create_image(server, token, f"curl-{n}")
    started = time.perf_counter()
    out = subprocess.run(["curl", "-sS", "-o", "/dev/null", "-w", "%{http_code}", "-T", str(path),
                          "-H", f"X-Auth-Token: {token}", "-H", "Content-Type: application/octet-stream",
                          f"{server.base}/v2/images/{image_id}/file"], capture_output=True, text=True, check=True)
    seconds = time.perf_counter() - started
    if out.stdout != "204":
        raise RuntimeError(f"curl upload answered {out.stdout}: {out.stderr}")
    return seconds


def sign_in(page, server: Server) -> None:
    page.goto(f"{server.base}/console/")
    page.get_by_label("User").fill("admin")
    page.get_by_label("Password").fill("admin")
    page.get_by_label("Project").fill("admin")
    page.get_by_role("button", name="Sign in").click()
    page.get_by_role("button", name="Sign out").wait_for()


def first_rows(page, server: Server) -> float:
    page.goto("about:blank")
    started = time.perf_counter()
    page.goto(f"{server.base}/console/#/images", wait_until="commit")
    page.locator("main tbody tr").first.wait_for(state="attached", timeout=30_000)
    return time.perf_counter() - started


def console_upload(page, path: Path, n: int) -> float:
    page.get_by_role("button", name="Upload image").click()
    dialog = page.get_by_role("dialog", name="Upload image")
    dialog.get_by_label("Image file").set_input_files(str(path))
    dialog.get_by_label("Name", exact=True).fill(f"console-{n}")
    dialog.get_by_label("Disk format").select_option("raw")
    started = time.perf_counter()
    dialog.get_by_role("button", name="Upload").click()
    dialog.get_by_text("is active").wait_for(timeout=600_000)
    seconds = time.perf_counter() - started
    dialog.get_by_role("button", name="Close").click()
    return seconds


def main() -> int:
    p = base_parser(__doc__.split("\n\n")[0])
    p.add_argument("--images", type=int, default=10_000)
    p.add_argument("--reps", type=int, default=10)
    p.add_argument("--mib", type=int, default=256)
    p.add_argument("--uploads", type=int, default=3)
    args = p.parse_args()
    from playwright.sync_api import sync_playwright

    ok = True
    with Server(args.data_root, args.keep) as server, tempfile.TemporaryDirectory(dir=args.data_root) as tmp:
        token = get_token(server)
        print(f"setup: {args.images} images created in {populate(server, token, args.images):.1f} s", flush=True)
        data = Path(tmp) / "upload.raw"
        with data.open("wb") as f:
            for _ in range(args.mib):
                f.write(os.urandom(1 << 20))
        maybe_pause(args, server)
        with sync_playwright() as pw:
            browser = pw.chromium.launch(executable_path=CHROMIUM, headless=True)
            page = browser.new_page(viewport={"width": 1280, "height": 800})
            sign_in(page, server)
            first_rows(page, server)                     # warm: the browser's cache, the server's
            with CpuWatch(server) as cpu:
                times = [first_rows(page, server) for _ in range(args.reps)]
            median, worst = statistics.median(times), max(times)
            ok &= worst <= FIRST_ROWS_TARGET_S
            print(f"images page, first rows after navigation ({args.images} images, {args.reps} loads): "
                  f"median {median * 1000:.0f} ms, worst {worst * 1000:.0f} ms "
                  f"(target <= {FIRST_ROWS_TARGET_S * 1000:.0f} ms: {'ok' if worst <= FIRST_ROWS_TARGET_S else 'MISSED'})")
            print(f"  {cpu.text()}")

            curl_times, console_times = [], []
            for n in range(args.uploads):
                curl_times.append(curl_upload(server, token, data, n))
                console_times.append(console_upload(page, data, n))
            browser.close()
        curl_s, console_s = statistics.median(curl_times), statistics.median(console_times)
        ratio = curl_s / console_s
        ok &= ratio >= UPLOAD_RATIO_TARGET
        print(f"{args.mib} MiB upload (median of {args.uploads}): curl -T {curl_s:.2f} s "
              f"({args.mib / curl_s:.0f} MiB/s), console {console_s:.2f} s ({args.mib / console_s:.0f} MiB/s, "
              f"create + PUT + show); ratio {ratio:.2f} "
              f"(target >= {UPLOAD_RATIO_TARGET}: {'ok' if ratio >= UPLOAD_RATIO_TARGET else 'MISSED'})")
        print(f"  curl runs {', '.join(f'{t:.2f}' for t in curl_times)} s; "
              f"console runs {', '.join(f'{t:.2f}' for t in console_times)} s")
    return 0 if ok else 1


if __name__ == "__main__":
    raise SystemExit(main())
