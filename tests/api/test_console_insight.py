"""The console's Insight panel (issue 25 item 3) in a real browser: images built without mounting
(tests/guest_images.py) are uploaded, inspected by the real job, and the panel on the image's
page shows the report as text — also when the guest's os-release and hostname carry markup."""

from __future__ import annotations

import re
import subprocess
from pathlib import Path

import httpx
import pytest

from tests.api.test_console import (XSS_NAME, V1, api, browser, console_users, page, shot,  # noqa: F401
                                    sign_in)
from tests.guest_images import ESP_TYPE, LINUX_TYPE, MiB, fake_root, gpt_disk, make_ext4, os_disk, to_qcow2

from playwright.sync_api import Page, expect  # noqa: E402  (test_console skips when it is missing)

pytestmark = pytest.mark.timeout(300)
OCTET = {"Content-Type": "application/octet-stream"}


@pytest.fixture(scope="module")
def disks(tmp_path_factory) -> dict[str, Path]:
    work = tmp_path_factory.mktemp("console-insight")
    ubuntu = os_disk(work, "ubuntu", fstab="LABEL=root / ext4 defaults 0 1\n")
    # A hostile guest: markup in os-release's NAME and PRETTY_NAME and in its hostname.
    tree = fake_root(work / "xss-tree", "ubuntu", hostname=XSS_NAME, fstab="LABEL=root / ext4 defaults 0 1\n")
    (tree / "usr/lib/os-release").write_text(f'NAME="{XSS_NAME}"\nID=ubuntu\nVERSION_ID="22.04"\n'
                                             f'PRETTY_NAME="{XSS_NAME}"\n')
    root_fs = make_ext4(tree, work / "xss-root.ext4", 96 * MiB, label="root")
    raw = gpt_disk(work / "xss.raw", 256 * MiB, [(ESP_TYPE, 8 * MiB, "EFI System"), (LINUX_TYPE, root_fs, "root")])
    xss = to_qcow2(raw, work / "xss.qcow2")
    raw.unlink()
    # Nothing to read: a blank disk, whose inspection fails ("no root filesystem ...").
    blank = work / "blank.qcow2"
    subprocess.run(["qemu-img", "create", "-q", "-f", "qcow2", str(blank), "64M"], check=True)
    return {"ubuntu": ubuntu, "xss": xss, "blank": blank}


def uploaded(server, path: Path, name: str, **attributes) -> str:
    with api(server) as http:
        made = http.post("/v2/images", json={"name": name, "disk_format": "qcow2", "container_format": "bare",
                                             **attributes})
        assert made.status_code == 201, made.text
        image_id = made.json()["id"]
        with path.open("rb") as f:
            put = http.put(f"/v2/images/{image_id}/file", content=f, headers=OCTET)
        assert put.status_code == 204, put.text
    return image_id


def insight(server, image_id: str) -> dict:
    with api(server) as http:
        return http.get(f"{V1}/images/{image_id}/insight").json()["insight"]


def open_image(page: Page, server, image_id: str, user: str = "console"):
    sign_in(page, server, user)
    page.goto(f"{server.url}/console/#/images/{image_id}")
    return page.get_by_role("region", name="Insight")


def test_panel_reaches_done_shows_the_report_and_inspects_again(server, console_users, page, disks):
    image_id = uploaded(server, disks["ubuntu"], "insight-ubuntu", architecture="aarch64")
    panel = open_image(page, server, image_id)
    expect(panel.get_by_role("heading", name="Insight")).to_be_visible()
    # The panel follows the inspection live, from pending/running to done, with no reload.
    expect(panel.get_by_text("done", exact=True)).to_be_visible(timeout=120_000)
    expect(panel.get_by_text("ubuntu (Ubuntu 22.04.4 LTS)", exact=True)).to_be_visible()
    for value in ("22.04", "x86_64", "6.1.0-18-amd64", "uefi", "ubuntu-guest", "linux"):
        expect(panel.get_by_text(value, exact=True)).to_be_visible()
    checks = panel.get_by_role("table")
    expect(checks.get_by_role("columnheader", name="Result")).to_be_visible()
    virtio = checks.get_by_role("row").filter(has_text="virtio_drivers")
    expect(virtio.get_by_role("cell").nth(1)).to_have_text("✓ pass")
    declared = checks.get_by_role("row").filter(has_text="declared_os")
    expect(declared.get_by_role("cell").nth(1)).to_have_text("! warning")
    # Declared (aarch64) against detected (x86_64) is called out in words.
    expect(panel.get_by_role("note")).to_contain_text("Declared and detected differ")
    expect(panel.get_by_role("note")).to_contain_text("Architecture: declared aarch64, detected x86_64")
    # The user's declared architecture is theirs: filled are the others only.
    filled = panel.get_by_role("list").filter(has_text="(boot_mode)")
    expect(filled).to_contain_text("Distribution (os_distribution)")
    expect(filled).not_to_contain_text("architecture")
    shot(page, "image-insight")

    first = insight(server, image_id)
    assert first["status"] == "done"
    page.get_by_role("button", name="Inspect again").click()
    expect(page.get_by_role("button", name="Inspect again")).to_be_disabled()
    # The new report arrives by itself: its time shows and the button is back.
    expect(page.get_by_role("button", name="Inspect again")).to_be_enabled(timeout=120_000)
    second = insight(server, image_id)
    assert second["status"] == "done" and second["job_id"] != first["job_id"], (first, second)
    expect(panel.get_by_text(f"at {second['inspected_at']}")).to_be_visible()
    expect(panel.get_by_text("done", exact=True)).to_be_visible()


def test_failed_inspection_shows_its_reason(server, console_users, page, disks):
    image_id = uploaded(server, disks["blank"], "insight-blank")
    panel = open_image(page, server, image_id)
    expect(panel.get_by_text("failed", exact=True)).to_be_visible(timeout=120_000)
    found = insight(server, image_id)
    assert found["status"] == "failed" and found["error"].startswith("inspection failed: no root filesystem")
    expect(panel.get_by_text(found["error"], exact=True)).to_be_visible()
    expect(panel.get_by_role("table")).to_have_count(0)


def test_reader_sees_the_panel_without_the_button(server, console_users, page, disks):
    image_id = uploaded(server, disks["ubuntu"], "insight-for-reader")
    panel = open_image(page, server, image_id, user="console-reader")
    expect(panel.get_by_text("done", exact=True)).to_be_visible(timeout=120_000)
    expect(panel.get_by_text("ubuntu (Ubuntu 22.04.4 LTS)", exact=True)).to_be_visible()
    expect(page.get_by_role("button", name="Inspect again")).to_have_count(0)
    # and the API refuses the reader anyway
    with api(server, "console-reader") as http:
        assert http.post(f"{V1}/images/{image_id}/insight").status_code == 403


def test_markup_from_the_guest_shows_as_characters(server, console_users, page, disks):
    image_id = uploaded(server, disks["xss"], "insight-hostile")
    panel = open_image(page, server, image_id)
    expect(panel.get_by_text("done", exact=True)).to_be_visible(timeout=120_000)
    found = insight(server, image_id)
    assert found["report"]["os"]["pretty_name"] == XSS_NAME and found["report"]["os"]["hostname"] == XSS_NAME
    expect(panel.get_by_text(f"ubuntu ({XSS_NAME})", exact=True)).to_be_visible()
    expect(panel.get_by_text(XSS_NAME, exact=True)).to_be_visible()       # the hostname
    assert page.locator("main img").count() == 0
    # the page fixture fails the test if any alert() ran


def test_panel_in_chinese(server, console_users, page, disks):
    image_id = uploaded(server, disks["ubuntu"], "insight-zh")
    sign_in(page, server)
    page.get_by_label("Language").select_option(label="中文")
    page.goto(f"{server.url}/console/#/images/{image_id}")
    panel = page.get_by_role("region", name="镜像洞察")
    expect(panel.get_by_role("heading", name="镜像洞察")).to_be_visible()
    expect(panel.get_by_text("已完成", exact=True)).to_be_visible(timeout=120_000)
    expect(panel.get_by_role("button", name="重新检测")).to_be_visible()
    expect(panel.get_by_role("columnheader", name="结果")).to_be_visible()
    expect(panel.get_by_role("cell", name=re.compile("通过")).first).to_be_visible()
    expect(panel.get_by_text("发行版", exact=True)).to_be_visible()
    shot(page, "image-insight-zh")
    page.get_by_label("语言").select_option(label="English")
    expect(page.get_by_role("region", name="Insight")).to_be_visible()
