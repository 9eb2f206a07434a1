"""The command line as people type it: a group's options (the connection of the client
groups, `--data-dir` of admin) before or after the subcommand, as the `openstack` CLI takes them."""

from __future__ import annotations

import json
import os
import subprocess

import pytest

from tests.conftest import VMIMAGE, free_port

CLIENT_GROUPS = ("image", "server", "volume", "snapshot", "job")


@pytest.fixture
def run(server):
    """The vmimage command with no connection in its environment: a default that pointed
    nowhere would make a dropped option fail."""
    env = {k: v for k, v in server.env.items() if k not in ("VMIMAGE_USER", "VMIMAGE_PASSWORD", "VMIMAGE_PROJECT")}
    env["VMIMAGE_URL"] = f"http://127.0.0.1:{free_port()}"     # nobody listens there

    def run(*args: str) -> subprocess.CompletedProcess:
        return subprocess.run([*VMIMAGE, *args], env=env, capture_output=True, text=True, timeout=120)
    return run


def demo(server) -> list[str]:
    return ["--url", server.url, "--user", "demo", "--password", "demo", "--project", "demo"]


@pytest.mark.parametrize("group", CLIENT_GROUPS)
def test_connection_options_after_the_subcommand(server, run, group):
    after = run(group, "list", *demo(server))
    assert after.returncode == 0, after.stderr
    before = run(group, *demo(server), "list")
    assert before.returncode == 0, before.stderr
    assert after.stdout == before.stdout


def test_options_mixed_on_both_sides_and_values_that_look_like_options(server, run, images_dir):
    made = run("image", "--url", server.url, "--user", "demo", "create", "--file", str(images_dir / "disk.qcow2"),
               "--name", "--project", "--password=demo", "--project", "demo")
    assert made.returncode == 0, made.stderr
    image = json.loads(made.stdout)
    assert image["name"] == "--project" and image["status"] == "active"   # the value stayed the name's
    assert image["owner"] == server.project_id("demo")                  # the option went to the group
    shown = run("image", "show", image["id"], "--project", "demo", "--url", server.url, "--user", "demo",
                "--password", "demo")
    assert shown.returncode == 0, shown.stderr
    assert json.loads(shown.stdout)["id"] == image["id"]
    assert run("image", "delete", image["id"], *demo(server)).returncode == 0


def test_an_option_after_the_subcommand_missing_its_value_is_refused(run):
    refused = run("image", "list", "--url")
    assert refused.returncode == 2
    assert "'--url' requires an argument" in refused.stderr
    unknown = run("image", "list", "--bogus", "x")
    assert unknown.returncode == 2 and "No such option" in unknown.stderr


def test_admin_data_dir_after_the_subcommand(server, run):
    data_dir = str(server.data_dir)
    after = run("admin", "project", "create", f"order-{os.getpid()}", "--data-dir", data_dir)
    assert after.returncode == 0, after.stderr
    listed = run("admin", "project", "list", f"--data-dir={data_dir}")
    assert listed.returncode == 0, listed.stderr
    assert json.loads(after.stdout) in json.loads(listed.stdout)
    assert listed.stdout == run("admin", "--data-dir", data_dir, "project", "list").stdout
