"""The web console (/console/) in a real browser: Playwright driving Debian's chromium against
the real server, as a person would use it — by the accessible names of issue 24.

VMIMAGE_CONSOLE_SCREENSHOTS=DIR saves a screenshot of each page there (docs/console/ holds
the ones the README shows)."""

from __future__ import annotations

import hashlib
import json
import os
import re
import shutil
import time
import uuid
from pathlib import Path

import httpx
import pytest

from tests.conftest import Server, auth_body, start_server

CHROMIUM = os.environ.get("VMIMAGE_CHROMIUM", "/usr/bin/chromium")
playwright_sync = pytest.importorskip("playwright.sync_api", reason="playwright is in the test extras")
if not Path(CHROMIUM).exists():
    pytest.skip(f"no browser at {CHROMIUM} (scripts/install.sh --test installs Debian's chromium)",
                allow_module_level=True)

from playwright.sync_api import Browser, Page, expect  # noqa: E402

pytestmark = pytest.mark.timeout(300)
XSS_NAME = "<img src=x onerror=alert(1)>"
V1 = "/vmimage/v1"
SHOTS = os.environ.get("VMIMAGE_CONSOLE_SCREENSHOTS")


def shot(page: Page, name: str) -> None:
    if SHOTS:
        Path(SHOTS).mkdir(parents=True, exist_ok=True)
        page.screenshot(path=str(Path(SHOTS) / f"{name}.png"), full_page=True)


@pytest.fixture(scope="module")
def browser():
    with playwright_sync.sync_playwright() as pw:
        chromium = pw.chromium.launch(executable_path=CHROMIUM, headless=True)
        yield chromium
        chromium.close()


@pytest.fixture
def page(browser: Browser):
    context = browser.new_context(viewport={"width": 1280, "height": 800})
    page = context.new_page()
    alerts: list[str] = []
    page.on("dialog", lambda dialog: (alerts.append(dialog.message), dialog.dismiss()))
    page.alerts = alerts  # type: ignore[attr-defined]
    yield page
    context.close()
    assert not alerts, f"a script ran and opened a dialog: {alerts}"


# The console's tests work in a project of their own, so other tests' images do not show up in
# the tables they count and sort.
USERS = {"console": "member", "console-reader": "reader"}
PROJECT = "console"


@pytest.fixture(scope="module")
def console_users(server):
    # Module-scoped on a session's server: the second module that uses it finds them made.
    if PROJECT in {p["name"] for p in json.loads(server.admin_cli("project", "list"))}:
        return USERS
    server.admin_cli("project", "create", PROJECT)
    for user, role in USERS.items():
        server.admin_cli("user", "create", user, "--project", PROJECT, "--role", role, "--password", f"{user}-pw")
    return USERS


def api_token(server: Server, user: str = "console") -> str:
    resp = httpx.post(f"{server.url}/identity/v3/auth/tokens", json=auth_body(user, f"{user}-pw", PROJECT))
    assert resp.status_code == 201, resp.text
    return resp.headers["X-Subject-Token"]


def api(server: Server, user: str = "console") -> httpx.Client:
    return httpx.Client(base_url=server.url, headers={"X-Auth-Token": api_token(server, user)}, timeout=120)


def sign_in(page: Page, server: Server, user: str = "console") -> None:
    page.goto(f"{server.url}/console/")
    page.get_by_label("User").fill(user)
    page.get_by_label("Password").fill(f"{user}-pw")
    page.get_by_label("Project").fill(PROJECT)
    page.get_by_role("button", name="Sign in").click()
    expect(page.get_by_role("button", name="Sign out")).to_be_visible()


def stored_token(page: Page) -> str | None:
    raw = page.evaluate("() => sessionStorage.getItem('vmimage.console.session')")
    return None if raw is None else page.evaluate("(raw) => JSON.parse(raw).token", raw)


def new_image(http: httpx.Client, name: str, **extra) -> dict:
    resp = http.post("/v2/images", json={"name": name, "disk_format": "qcow2", "container_format": "bare", **extra})
    assert resp.status_code == 201, resp.text
    return resp.json()


def test_files_are_served_with_a_strict_policy(server):
    resp = httpx.get(f"{server.url}/console", follow_redirects=False)
    assert resp.status_code == 308 and resp.headers["location"] == "/console/"
    for path, kind in (("/console/", "text/html"), ("/console/app.js", "text/javascript"),
                       ("/console/i18n.js", "text/javascript"), ("/console/style.css", "text/css")):
        resp = httpx.get(server.url + path)
        assert resp.status_code == 200 and resp.headers["content-type"].startswith(kind), path
        csp = resp.headers["content-security-policy"]
        assert "script-src 'self'" in csp and "style-src 'self'" in csp and "frame-ancestors 'none'" in csp
        assert "unsafe-inline" not in csp and "unsafe-eval" not in csp
        assert resp.headers["x-content-type-options"] == "nosniff"
    index = httpx.get(f"{server.url}/console/").text
    assert "<script>" not in index and "<style" not in index and " style=" not in index
    # nothing outside the folder, nothing unknown: the console's own 404
    for path in ("/console/%2e%2e%2f__init__.py", "/console/routes.py", "/console/nope.js", "/console/.hidden.js"):
        resp = httpx.get(server.url + path)
        assert resp.status_code == 404, path
        assert resp.json()["error"]["code"] == "not_found" or resp.json()["error"]["status"] == 404
    # `/` keeps Glance's version document
    assert "versions" in httpx.get(f"{server.url}/").json()


def test_sign_in_upload_xss_search_detail_and_sign_out(server, console_users, page, images_dir):
    page.goto(f"{server.url}/console/")
    shot(page, "sign-in")
    sign_in(page, server)
    for link in ("Images", "Servers", "Volumes", "Snapshots", "Jobs"):
        expect(page.get_by_role("link", name=link, exact=True)).to_be_visible()
    token = stored_token(page)
    assert token
    assert page.evaluate("() => document.cookie") == ""
    assert token not in str(page.evaluate("() => Object.values(localStorage)"))
    # a reload keeps the session
    page.reload()
    expect(page.get_by_role("button", name="Sign out")).to_be_visible()
    assert stored_token(page) == token

    # upload a real qcow2 named like markup: it is shown as those characters, nothing runs
    qcow2 = images_dir / "disk.qcow2"
    page.get_by_role("button", name="Upload image").click()
    dialog = page.get_by_role("dialog", name="Upload image")
    expect(dialog).to_be_visible()
    dialog.get_by_label("Image file").set_input_files(str(qcow2))
    dialog.get_by_label("Name", exact=True).fill(XSS_NAME)
    dialog.get_by_label("Disk format").select_option("qcow2")
    progress = dialog.get_by_role("progressbar")
    expect(progress).to_have_attribute("value", "0")
    dialog.get_by_role("button", name="Upload").click()
    expect(dialog.get_by_text("is active")).to_be_visible(timeout=60_000)
    expect(progress).to_have_attribute("value", "100")
    shot(page, "upload")
    dialog.get_by_role("button", name="Close").click()
    expect(dialog).to_be_hidden()
    link = page.get_by_role("link", name=XSS_NAME, exact=True)
    expect(link).to_be_visible()
    assert page.locator("main img").count() == 0
    row = page.get_by_role("row").filter(has=link)
    expect(row.get_by_role("cell", name="active", exact=True)).to_be_visible()
    with api(server) as http:
        mine = [i for i in http.get("/v2/images", params={"name": XSS_NAME}).json()["images"]]
        assert len(mine) == 1 and mine[0]["status"] == "active" and mine[0]["size"] == qcow2.stat().st_size
        assert mine[0]["checksum"] == hashlib.md5(qcow2.read_bytes()).hexdigest()
        xss_id = mine[0]["id"]

        # search by name: Glance's name filter, server side
        needle = new_image(http, "needle-in-console")
        for n in range(22):
            new_image(http, f"hay-{n:02d}")
    page.reload()
    for header in ("Name", "Status", "Format", "Size"):
        expect(page.get_by_role("columnheader", name=header, exact=True)).to_be_visible()
    shot(page, "images")
    search = page.get_by_label("Search")
    search.fill("needle-in-console")
    search.press("Enter")
    expect(page.get_by_role("link", name="needle-in-console")).to_be_visible()
    expect(page.locator("main tbody tr")).to_have_count(1)

    # filters: status and format, with server-side paging and sort
    search.fill("")
    search.press("Enter")
    page.get_by_label("Status", exact=True).select_option("queued")
    expect(page.locator("main tbody tr")).to_have_count(20)
    expect(page.get_by_role("link", name=XSS_NAME, exact=True)).to_have_count(0)
    page.get_by_role("button", name="Name", exact=True).click()
    expect(page.get_by_role("columnheader", name="Name", exact=True)).to_have_attribute("aria-sort", "ascending")
    expect(page.locator("main tbody tr").first).to_contain_text("hay-00")
    page.get_by_role("button", name="Next").click()
    expect(page.get_by_text("Page 2")).to_be_visible()
    expect(page.get_by_role("link", name="needle-in-console")).to_be_visible()
    page.get_by_role("button", name="Previous").click()
    expect(page.get_by_role("link", name="hay-00")).to_be_visible()
    page.get_by_label("Status", exact=True).select_option("")
    page.get_by_label("Format", exact=True).select_option("raw")
    expect(page.get_by_text("No images.")).to_be_visible()
    page.get_by_label("Format", exact=True).select_option("")

    # detail: every attribute, as text
    page.goto(f"{server.url}/console/#/images/{xss_id}")
    expect(page.get_by_role("heading", name=XSS_NAME, exact=True)).to_be_visible()
    expect(page.get_by_text(mine[0]["checksum"])).to_be_visible()
    expect(page.get_by_text("os_hash_value")).to_be_visible()
    # its ids as each dialect shows them: Glance's UUID, JD Cloud's img- ref, Aries' integer
    with api(server) as http:
        ids = http.get(f"{V1}/images/{xss_id}").json()["image"]["ids"]
    assert ids["glance"] == xss_id and ids["jdcloud"].startswith("img-") and isinstance(ids["aries"], int)
    identifiers = page.locator("dl").first
    for value in (xss_id, ids["jdcloud"], str(ids["aries"])):
        expect(identifiers.get_by_text(value, exact=True).first).to_be_visible()
    assert page.locator("main img").count() == 0
    shot(page, "image-detail")

    # share with another project: it becomes a member, and the image shows in its list when accepted
    alt = server.project_id("alt")
    page.get_by_role("button", name="Share").click()
    share = page.get_by_role("dialog", name="Share with project")
    share.get_by_label("Project id").fill(alt)
    share.get_by_role("button", name="Share").click()
    expect(page.get_by_role("cell", name=alt, exact=True)).to_be_visible()
    with server.client("alt") as other:
        assert other.get(f"/v2/images/{xss_id}/members/{alt}").json()["status"] == "pending"

    # delete with confirmation
    page.goto(f"{server.url}/console/#/images/{needle['id']}")
    page.get_by_role("button", name="Delete").click()
    confirm = page.get_by_role("dialog", name="Delete image")
    confirm.get_by_role("button", name="Delete").click()
    expect(page.get_by_role("heading", name="Images")).to_be_visible()
    with api(server) as http:
        assert http.get(f"/v2/images/{needle['id']}").status_code == 404

    # sign out revokes the token
    page.get_by_role("button", name="Sign out").click()
    expect(page.get_by_role("button", name="Sign in")).to_be_visible()
    assert stored_token(page) is None
    check = httpx.get(f"{server.url}/identity/v3/auth/tokens",
                      headers={"X-Auth-Token": server.token("admin"), "X-Subject-Token": token})
    assert check.status_code == 404, check.text
    assert httpx.get(f"{server.url}/v2/images", headers={"X-Auth-Token": token}).status_code == 401


def test_upload_cancel_leaves_nothing(server, console_users, page, tmp_path):
    big = tmp_path / "big.raw"
    with big.open("wb") as f:
        f.write(os.urandom(24 << 20))
    sign_in(page, server)
    # a slow link, so the upload is still under way when Cancel is pressed
    cdp = page.context.new_cdp_session(page)
    cdp.send("Network.enable")
    cdp.send("Network.emulateNetworkConditions", {"offline": False, "latency": 0, "downloadThroughput": -1,
                                                  "uploadThroughput": 1 << 20})
    page.get_by_role("button", name="Upload image").click()
    dialog = page.get_by_role("dialog", name="Upload image")
    dialog.get_by_label("Name", exact=True).fill("cancelled-upload")
    dialog.get_by_label("Disk format").select_option("raw")
    dialog.get_by_label("Image file").set_input_files(str(big))
    dialog.get_by_role("button", name="Upload").click()
    progress = dialog.get_by_role("progressbar")
    expect(progress).not_to_have_attribute("value", "0", timeout=30_000)
    assert int(progress.get_attribute("value") or 0) < 100
    dialog.get_by_role("button", name="Cancel").click()
    expect(dialog).to_be_hidden()
    gone(server, "cancelled-upload")

    # Escape cancels too (a dialog closes on Escape by itself; the upload must not go on unseen)
    page.get_by_role("button", name="Upload image").click()
    dialog = page.get_by_role("dialog", name="Upload image")
    dialog.get_by_label("Name", exact=True).fill("escaped-upload")
    dialog.get_by_label("Disk format").select_option("raw")
    dialog.get_by_label("Image file").set_input_files(str(big))
    dialog.get_by_role("button", name="Upload").click()
    expect(dialog.get_by_role("progressbar")).not_to_have_attribute("value", "0", timeout=30_000)
    assert int(dialog.get_by_role("progressbar").get_attribute("value") or 0) < 100
    page.keyboard.press("Escape")
    expect(dialog).to_be_hidden()
    gone(server, "escaped-upload")


def gone(server: Server, name: str) -> None:
    with api(server) as http:
        deadline = time.monotonic() + 30
        while http.get("/v2/images", params={"name": name}).json()["images"]:
            assert time.monotonic() < deadline, f"the cancelled upload's image {name} is still there"
            time.sleep(0.2)


def test_a_reader_sees_no_upload_and_the_api_refuses_anyway(server, console_users, page):
    sign_in(page, server, "console-reader")
    expect(page.get_by_role("heading", name="Images")).to_be_visible()
    expect(page.get_by_role("columnheader", name="Name", exact=True)).to_be_visible()
    expect(page.get_by_role("button", name="Upload image")).to_have_count(0)
    expect(page.get_by_text("Read only")).to_be_visible()
    shot(page, "reader")
    refused = httpx.post(f"{server.url}/v2/images", headers={"X-Auth-Token": stored_token(page) or ""},
                         json={"name": "x", "disk_format": "raw", "container_format": "bare"})
    assert refused.status_code == 403


def test_language_switch_is_remembered(server, console_users, page):
    page.goto(f"{server.url}/console/")
    page.get_by_label("Language").select_option(label="中文")
    expect(page.get_by_label("语言")).to_be_visible()
    expect(page.get_by_role("button", name="登录")).to_be_visible()
    expect(page.get_by_label("用户")).to_be_visible()
    page.reload()
    expect(page.get_by_label("语言")).to_have_value("zh")
    page.get_by_label("用户").fill("console")
    page.get_by_label("密码").fill("console-pw")
    page.get_by_label("项目").fill(PROJECT)
    page.get_by_role("button", name="登录").click()
    expect(page.get_by_role("link", name="镜像", exact=True)).to_be_visible()
    expect(page.get_by_role("columnheader", name="名称", exact=True)).to_be_visible()
    shot(page, "images-zh")
    page.get_by_label("语言").select_option(label="English")
    expect(page.get_by_role("link", name="Images", exact=True)).to_be_visible()
    page.reload()
    expect(page.get_by_label("Language")).to_have_value("en")


def test_an_ended_token_returns_to_sign_in(server, console_users, page, tmp_path, database_factory):
    # revoked behind the console's back: the next call's 401 brings the sign-in form back
    sign_in(page, server)
    token = stored_token(page)
    assert httpx.delete(f"{server.url}/identity/v3/auth/tokens",
                        headers={"X-Auth-Token": token or "", "X-Subject-Token": token or ""}).status_code == 204
    page.get_by_role("link", name="Servers", exact=True).click()
    expect(page.get_by_role("button", name="Sign in")).to_be_visible()
    expect(page.get_by_text("Your session has ended")).to_be_visible()
    assert stored_token(page) is None

    # expired: the console goes back to sign-in when the token's time is up
    short = start_server(tmp_path, database_factory(), VMIMAGE_TOKEN_TTL="3")
    try:
        short.admin_cli("project", "create", PROJECT)
        short.admin_cli("user", "create", "console", "--project", PROJECT, "--role", "member", "--password", "console-pw")
        sign_in(page, short)
        expect(page.get_by_role("button", name="Sign in")).to_be_visible(timeout=15_000)
        expect(page.get_by_text("Your session has ended")).to_be_visible()
        assert stored_token(page) is None
    finally:
        short.stop()


@pytest.mark.skipif(shutil.which("qemu-system-x86_64") is None, reason="qemu-system-x86_64 is not installed")
def test_an_image_from_a_running_server_and_its_job(server, console_users, page, images_dir):
    with api(server) as http:
        base = new_image(http, "console-base")
        assert http.put(f"/v2/images/{base['id']}/file", content=(images_dir / "disk.qcow2").read_bytes(),
                        headers={"Content-Type": "application/octet-stream"}).status_code == 204
        made = http.post(f"{V1}/servers", json={"name": "console-web", "image_id": base["id"],
                                                "system_disk": {"size_gb": 1, "category": "cloud"},
                                                "data_disks": [{"device": "vdb", "size_gb": 1}], "start": True},
                         timeout=120)
        assert made.status_code == 201, made.text
        srv = made.json()["server"]
    try:
        sign_in(page, server)
        page.get_by_role("link", name="Servers", exact=True).click()
        expect(page.get_by_role("cell", name="running")).to_be_visible()
        shot(page, "servers")
        page.get_by_role("link", name="console-web").click()
        expect(page.get_by_role("heading", name="console-web")).to_be_visible()
        expect(page.get_by_role("button", name="Stop")).to_be_visible()
        page.get_by_role("button", name="Create image").click()
        dialog = page.get_by_role("dialog", name="Create image")
        dialog.get_by_label("Name", exact=True).fill("from-console")
        dialog.get_by_label("Kind").select_option("system")
        shot(page, "create-image")
        dialog.get_by_role("button", name="Create").click()
        expect(dialog).to_be_hidden()
        started = page.get_by_role("status").filter(has_text="started")
        expect(started).to_be_visible()
        job_id = re.search(r"Job (\S+) started", started.inner_text()).group(1)
        page.get_by_role("link", name="Jobs", exact=True).first.click()
        row = page.get_by_role("row").filter(has_text=job_id)
        expect(row).to_be_visible()
        # no reload: the page follows the job by itself
        expect(row.get_by_role("cell", name="SUCCESS")).to_be_visible(timeout=180_000)
        shot(page, "jobs")
        with api(server) as http:
            job = http.get(f"{V1}/jobs/{job_id}").json()["job"]
            image = http.get(f"/v2/images/{job['entities']['image_ids'][0]}").json()
            assert image["name"] == "from-console" and image["status"] == "active"

        # stop from the console; the whole-server dialog offers each data disk
        page.get_by_role("link", name="Servers", exact=True).click()
        page.get_by_role("link", name="console-web").click()
        page.get_by_role("button", name="Stop").click()
        expect(page.get_by_role("button", name="Start")).to_be_visible(timeout=60_000)
        page.get_by_role("button", name="Create image").click()
        dialog = page.get_by_role("dialog", name="Create image")
        dialog.get_by_label("Name", exact=True).fill("whole-from-console")
        dialog.get_by_label("Kind").select_option("whole")
        expect(dialog.get_by_label("Exclude vdb")).to_be_visible()
        dialog.get_by_label("Resize (GB) vdb").fill("2")
        dialog.get_by_label("Device", exact=True).fill("vdc")
        dialog.get_by_label("Snapshot").select_option("empty")
        dialog.get_by_label("Size of an empty disk (GB)").fill("1")
        dialog.get_by_role("button", name="Create").click()
        started = page.get_by_role("status").filter(has_text="started")
        expect(started).to_be_visible()
        job_id = re.search(r"Job (\S+) started", started.inner_text()).group(1)
        page.get_by_role("link", name="Jobs", exact=True).first.click()
        expect(page.get_by_role("row").filter(has_text=job_id).get_by_role("cell", name="SUCCESS")).to_be_visible(
            timeout=180_000)
        with api(server) as http:
            ids = http.get(f"{V1}/jobs/{job_id}").json()["job"]["entities"]["image_ids"]
            sizes = [http.get(f"/v2/images/{i}").json()["virtual_size"] for i in ids]
        assert sizes == [1 << 30, 2 << 30, 1 << 30], sizes      # system, vdb resized, vdc inserted empty
        page.get_by_role("link", name="Servers", exact=True).click()
        page.get_by_role("link", name="console-web").click()
        page.get_by_role("link", name="Volumes", exact=True).click()
        expect(page.get_by_role("heading", name="Volumes")).to_be_visible()
        shot(page, "volumes")
        # an image from a volume: the server's data disk, on its own page
        page.get_by_role("link", name=srv["data_disks"][0]["name"] or srv["data_disks"][0]["id"]).click()
        page.get_by_role("button", name="Create image").click()
        dialog = page.get_by_role("dialog", name="Create image")
        dialog.get_by_label("Name", exact=True).fill("from-volume")
        dialog.get_by_role("button", name="Create").click()
        started = page.get_by_role("status").filter(has_text="started")
        expect(started).to_be_visible()
        job_id = re.search(r"Job (\S+) started", started.inner_text()).group(1)
        page.get_by_role("link", name="Jobs", exact=True).first.click()
        expect(page.get_by_role("row").filter(has_text=job_id).get_by_role("cell", name="SUCCESS")).to_be_visible(
            timeout=180_000)
        page.get_by_role("link", name="Snapshots", exact=True).click()
        expect(page.get_by_role("heading", name="Snapshots")).to_be_visible()
    finally:
        with api(server) as http:
            http.post(f"{V1}/servers/{srv['id']}/actions/stop", timeout=120)
            http.delete(f"{V1}/servers/{srv['id']}", timeout=120)


def test_the_native_image_route_names_every_dialects_id(server, console_users):
    with api(server) as http:
        image = new_image(http, "ids-of-dialects")
        shown = http.get(f"{V1}/images/{image['id']}")
        assert shown.status_code == 200, shown.text
        body = shown.json()["image"]
        assert body["id"] == image["id"] and body["status"] == "queued"
        assert re.fullmatch(r"img-[0-9a-z]{8,32}", body["ids"]["jdcloud"]) and body["ids"]["aries"] >= 1
        missing = http.get(f"{V1}/images/00000000-0000-0000-0000-000000000000")
        assert missing.status_code == 404 and missing.json()["error"]["code"]
    with server.client("alt") as other:     # another project's image is not there for it
        assert other.get(f"{V1}/images/{image['id']}").status_code == 404


def test_import_from_and_export_to_a_granted_bucket(tmp_path, database_factory, swift_s3, page, images_dir):
    srv = start_server(tmp_path, database_factory(), **swift_s3.env)
    try:
        srv.admin_cli("project", "create", PROJECT)
        srv.admin_cli("user", "create", "console", "--project", PROJECT, "--role", "member", "--password", "console-pw")
        s3 = swift_s3.client()
        bucket = f"console-{uuid.uuid4().hex[:8]}"
        s3.create_bucket(Bucket=bucket)
        srv.admin_cli("bucket", "grant", bucket, "--project", PROJECT)
        qcow2 = (images_dir / "disk.qcow2").read_bytes()
        s3.put_object(Bucket=bucket, Key="in/disk.qcow2", Body=qcow2)
        sign_in(page, srv)
        page.get_by_role("button", name="Import from bucket").click()
        dialog = page.get_by_role("dialog", name="Import from bucket")
        dialog.get_by_label("Name", exact=True).fill("imported")
        dialog.get_by_label("Bucket").fill(bucket)
        dialog.get_by_label("Object key").fill("in/disk.qcow2")
        dialog.get_by_label("Disk format").select_option("qcow2")
        dialog.get_by_role("button", name="Import").click()
        expect(page.get_by_role("status").filter(has_text="started")).to_be_visible()
        page.get_by_role("link", name="Jobs", exact=True).first.click()
        expect(page.get_by_role("cell", name="SUCCESS")).to_be_visible(timeout=120_000)
        page.get_by_role("link", name="Images", exact=True).click()
        page.get_by_role("link", name="imported").click()
        page.get_by_role("button", name="Export to bucket").click()
        dialog = page.get_by_role("dialog", name="Export to bucket")
        dialog.get_by_label("Bucket").fill(bucket)
        dialog.get_by_label("Object key").fill("out/copy.qcow2")
        dialog.get_by_role("button", name="Export").click()
        expect(page.get_by_role("status").filter(has_text="started")).to_be_visible()
        page.get_by_role("link", name="Jobs", exact=True).first.click()
        expect(page.get_by_role("cell", name="SUCCESS")).to_have_count(2, timeout=120_000)
        assert s3.get_object(Bucket=bucket, Key="out/copy.qcow2")["Body"].read() == qcow2
        # an object that is not there: the job fails, and the jobs page says why
        page.get_by_role("link", name="Images", exact=True).click()
        page.get_by_role("button", name="Import from bucket").click()
        dialog = page.get_by_role("dialog", name="Import from bucket")
        dialog.get_by_label("Name", exact=True).fill("missing")
        dialog.get_by_label("Bucket").fill(bucket)
        dialog.get_by_label("Object key").fill("in/not-there.qcow2")
        dialog.get_by_role("button", name="Import").click()
        started = page.get_by_role("status").filter(has_text="started")
        expect(started).to_be_visible()
        job_id = re.search(r"Job (\S+) started", started.inner_text()).group(1)
        page.get_by_role("link", name="Jobs", exact=True).first.click()
        row = page.get_by_role("row").filter(has_text=job_id)
        expect(row.get_by_role("cell", name="FAIL", exact=True)).to_be_visible(timeout=120_000)
        with api(srv) as http:
            failed = http.get(f"{V1}/jobs/{job_id}").json()["job"]
        assert failed["status"] == "FAIL" and failed["fail_reason"]
        expect(row).to_contain_text(failed["fail_reason"])
        # a bucket not granted: the API's refusal, shown in the dialog, nothing started
        page.get_by_role("link", name="Images", exact=True).click()
        page.get_by_role("button", name="Import from bucket").click()
        dialog = page.get_by_role("dialog", name="Import from bucket")
        dialog.get_by_label("Name", exact=True).fill("nope")
        dialog.get_by_label("Bucket").fill("not-granted")
        dialog.get_by_label("Object key").fill("x")
        dialog.get_by_role("button", name="Import").click()
        expect(dialog.get_by_role("alert")).to_be_visible()
    finally:
        srv.stop()


def test_administration(server, console_users, page):
    sign_in(page, server)                        # a member sees no Administration
    expect(page.get_by_role("link", name="Images", exact=True)).to_be_visible()
    expect(page.get_by_role("link", name="Administration")).to_have_count(0)
    page.get_by_role("button", name="Sign out").click()

    page.get_by_label("User").fill("admin")
    page.get_by_label("Password").fill("admin")
    page.get_by_label("Project").fill("admin")
    page.get_by_role("button", name="Sign in").click()
    page.get_by_role("link", name="Administration").click()
    expect(page.get_by_role("heading", name="Administration")).to_be_visible()
    suffix = uuid.uuid4().hex[:6]
    project, user, bucket = f"team-{suffix}", f"ops-{suffix}", f"share-{suffix}"

    page.get_by_role("button", name="Create project").click()
    dialog = page.get_by_role("dialog", name="Create project")
    dialog.get_by_label("Name").fill(project)
    dialog.get_by_role("button", name="Create").click()
    projects = page.get_by_role("region", name="Projects")
    expect(projects.get_by_role("cell", name=project, exact=True)).to_be_visible()

    projects.get_by_role("button", name=f"Quotas of {project}").click()
    dialog = page.get_by_role("dialog", name=f"Quotas of {project}")
    dialog.get_by_label("Images (-1: unlimited)").fill("5")
    dialog.get_by_role("button", name="Save").click()
    expect(projects.get_by_role("row").filter(has_text=project).get_by_role("cell", name="5", exact=True)).to_be_visible()

    page.get_by_role("button", name="Create user").click()
    dialog = page.get_by_role("dialog", name="Create user")
    dialog.get_by_label("Name").fill(user)
    dialog.get_by_label("Password").fill("ops-pw")
    dialog.get_by_label("Project").select_option(project)
    dialog.get_by_label("Role").select_option("member")
    dialog.get_by_role("button", name="Create").click()
    users = page.get_by_role("region", name="Users")
    expect(users.get_by_role("cell", name=user, exact=True)).to_be_visible()
    users.get_by_role("button", name=f"Grant a role to {user}").click()
    dialog = page.get_by_role("dialog", name=f"Grant a role to {user}")
    dialog.get_by_label("Project").select_option(PROJECT)
    dialog.get_by_label("Role").select_option("reader")
    dialog.get_by_role("button", name="Grant").click()
    expect(users.get_by_role("row").filter(has_text=user)).to_contain_text(f"{PROJECT}: reader")
    assert httpx.post(f"{server.url}/identity/v3/auth/tokens",
                      json=auth_body(user, "ops-pw", PROJECT)).status_code == 201

    page.get_by_role("button", name="Create access key").click()
    dialog = page.get_by_role("dialog", name="Create access key")
    dialog.get_by_label("User").select_option(user)
    dialog.get_by_role("button", name="Create").click()
    once = page.get_by_role("dialog", name="New access key")
    expect(once).to_contain_text("shown this once")
    values = once.locator("dd").all_inner_texts()
    access_key, secret = values[0], values[1]
    assert len(secret) >= 30
    shot(page, "admin-access-key")
    once.get_by_role("button", name="Close").click()
    keys = page.get_by_role("region", name="Access keys")
    expect(keys.get_by_role("cell", name=access_key, exact=True)).to_be_visible()
    assert secret not in page.content()
    keys.get_by_role("button", name=f"Disable {access_key}").click()
    expect(keys.get_by_role("button", name=f"Enable {access_key}")).to_be_visible()
    keys.get_by_role("button", name=f"Delete {access_key}").click()
    expect(keys.get_by_role("cell", name=access_key, exact=True)).to_have_count(0)

    page.get_by_role("button", name="Grant a bucket").click()
    dialog = page.get_by_role("dialog", name="Grant a bucket")
    dialog.get_by_label("Bucket").fill(bucket)
    dialog.get_by_label("Project").select_option(project)
    dialog.get_by_role("button", name="Grant").click()
    grants = page.get_by_role("region", name="Bucket grants")
    expect(grants.get_by_role("cell", name=bucket, exact=True)).to_be_visible()
    shot(page, "administration")
    grants.get_by_role("button", name=f"Revoke {bucket}").click()
    expect(grants.get_by_role("cell", name=bucket, exact=True)).to_have_count(0)

    users.get_by_role("button", name=f"Disable {user}").click()
    expect(users.get_by_role("button", name=f"Enable {user}")).to_be_visible()
    assert httpx.post(f"{server.url}/identity/v3/auth/tokens",
                      json=auth_body(user, "ops-pw", PROJECT)).status_code == 401
    users.get_by_role("button", name=f"Delete {user}").click()
    page.get_by_role("dialog", name="Delete user").get_by_role("button", name="Delete").click()
    expect(users.get_by_role("cell", name=user, exact=True)).to_have_count(0)
