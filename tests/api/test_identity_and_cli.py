"""Keystone-compatible identity, an external Keystone, and the command line."""

from __future__ import annotations

import json
import subprocess

import httpx

from tests.conftest import VMIMAGE, auth_body, start_server


def test_token_issue_validate_revoke(server):
    resp = httpx.post(f"{server.url}/identity/v3/auth/tokens", json=auth_body("demo", "demo", "demo"))
    assert resp.status_code == 201
    token = resp.headers["X-Subject-Token"]
    body = resp.json()["token"]
    assert {r["name"] for r in body["roles"]} == {"member", "reader"}
    image_urls = [e["url"] for s in body["catalog"] if s["type"] == "image" for e in s["endpoints"]]
    assert image_urls and all(u == server.url for u in image_urls)
    admin = server.token("admin")
    check = httpx.get(f"{server.url}/identity/v3/auth/tokens",
                      headers={"X-Auth-Token": admin, "X-Subject-Token": token})
    assert check.status_code == 200 and check.json()["token"]["user"]["name"] == "demo"
    rescoped = httpx.post(f"{server.url}/identity/v3/auth/tokens", json={"auth": {
        "identity": {"methods": ["token"], "token": {"id": token}},
        "scope": {"project": {"id": body["project"]["id"]}}}})
    assert rescoped.status_code == 201
    assert httpx.delete(f"{server.url}/identity/v3/auth/tokens",
                        headers={"X-Auth-Token": admin, "X-Subject-Token": token}).status_code == 204
    assert httpx.get(f"{server.url}/v2/images", headers={"X-Auth-Token": token}).status_code == 401
    assert httpx.get(f"{server.url}/identity/v3/auth/tokens",
                     headers={"X-Auth-Token": admin, "X-Subject-Token": token}).status_code == 404


def test_bad_credentials(server):
    assert httpx.post(f"{server.url}/identity/v3/auth/tokens",
                      json=auth_body("demo", "wrong", "demo")).status_code == 401
    assert httpx.post(f"{server.url}/identity/v3/auth/tokens",
                      json=auth_body("demo", "demo", "alt")).status_code == 401   # no role there
    assert httpx.get(f"{server.url}/identity/v3").json()["version"]["id"] == "v3.14"


def test_external_keystone_is_trusted(server, tmp_path, database_factory):
    """A second vmimage validates tokens against the first one's Keystone API."""
    other = start_server(tmp_path, database_factory(), provision=False,
                         VMIMAGE_KEYSTONE_URL=f"{server.url}/identity/v3", VMIMAGE_KEYSTONE_USER="admin",
                         VMIMAGE_KEYSTONE_PASSWORD="admin", VMIMAGE_KEYSTONE_PROJECT="admin")
    try:
        token = server.token("demo")
        with httpx.Client(base_url=other.url, headers={"X-Auth-Token": token}) as http:
            created = http.post("/v2/images", json={"name": "via-external"})
            assert created.status_code == 201
            assert created.json()["owner"] == server.project_id("demo")
        assert httpx.get(f"{other.url}/v2/images", headers={"X-Auth-Token": "bogus"}).status_code == 401
    finally:
        other.stop()


def test_admin_cli_and_image_cli(server, images_dir, tmp_path):
    project = json.loads(server.admin_cli("project", "create", "cli-proj"))
    assert project["name"] == "cli-proj"
    server.admin_cli("user", "create", "cli-user", "--project", "cli-proj", "--role", "member",
                     "--password", "pw")
    key = json.loads(server.admin_cli("access-key", "create", "--user", "cli-user"))
    assert len(key["access_key"]) >= 16 and len(key["secret_key"]) >= 30
    env = {**server.env, "VMIMAGE_URL": server.url, "VMIMAGE_USER": "cli-user", "VMIMAGE_PASSWORD": "pw",
           "VMIMAGE_PROJECT": "cli-proj"}

    def cli(*args: str) -> str:
        out = subprocess.run([*VMIMAGE, "image", *args], env=env, capture_output=True, text=True, timeout=120)
        assert out.returncode == 0, out.stderr
        return out.stdout

    created = json.loads(cli("create", "--file", str(images_dir / "disk.qcow2"), "--name", "from-cli"))
    assert created["disk_format"] == "qcow2" and created["status"] == "active"   # detected, not given
    assert "from-cli" in cli("list")
    out = tmp_path / "back.qcow2"
    cli("download", created["id"], "--file", str(out))
    assert out.read_bytes() == (images_dir / "disk.qcow2").read_bytes()
    cli("delete", created["id"])
    refused = subprocess.run([*VMIMAGE, "image", "create", "--file", str(images_dir / "backing.qcow2"),
                              "--name", "unsafe"], env=env, capture_output=True, text=True, timeout=120)
    assert refused.returncode != 0


def test_only_the_owner_admins_and_services_see_or_revoke_a_token(server):
    tokens = f"{server.url}/identity/v3/auth/tokens"
    victim = httpx.post(tokens, json=auth_body("alt", "alt", "alt")).headers["X-Subject-Token"]
    demo = server.token("demo")
    for method in ("GET", "HEAD", "DELETE"):
        resp = httpx.request(method, tokens, headers={"X-Auth-Token": demo, "X-Subject-Token": victim})
        assert resp.status_code == 403, (method, resp.status_code)
        if method != "HEAD":
            assert "alt" not in resp.text and resp.json()["error"]["code"] == 403
    # An unknown token answers the same to a stranger: nothing to learn from the status.
    assert httpx.get(tokens, headers={"X-Auth-Token": demo, "X-Subject-Token": "nope"}).status_code == 403
    assert httpx.get(f"{server.url}/v2/images", headers={"X-Auth-Token": victim}).status_code == 200
    # Its owner may; so may a service user (the `service` role) and an admin.
    own = httpx.get(tokens, headers={"X-Auth-Token": victim, "X-Subject-Token": victim})
    assert own.status_code == 200 and own.json()["token"]["user"]["name"] == "alt"
    server.admin_cli("project", "create", "service")
    server.admin_cli("user", "create", "nova", "--project", "service", "--role", "service", "--password", "nova")
    service = httpx.post(tokens, json=auth_body("nova", "nova", "service")).headers["X-Subject-Token"]
    assert httpx.head(tokens, headers={"X-Auth-Token": service, "X-Subject-Token": victim}).status_code == 200
    assert httpx.get(tokens, headers={"X-Auth-Token": service, "X-Subject-Token": "nope"}).status_code == 404
    assert httpx.delete(tokens, headers={"X-Auth-Token": victim, "X-Subject-Token": victim}).status_code == 204
    assert httpx.get(f"{server.url}/v2/images", headers={"X-Auth-Token": victim}).status_code == 401
