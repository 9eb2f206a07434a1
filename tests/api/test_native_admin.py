"""Administration through the native API (/vmimage/v1/admin): admins only, every refusal in the
native envelope with nothing changed; what it makes works at once through the other faces."""

from __future__ import annotations

import uuid

import httpx

from tests.conftest import auth_body

A = "/vmimage/v1/admin"


def login(server, user: str, password: str, project: str) -> httpx.Response:
    return httpx.post(f"{server.url}/identity/v3/auth/tokens", json=auth_body(user, password, project))


def test_only_admins_administer(server):
    with server.client("demo") as member, server.client("reader") as reader:
        for http in (member, reader):
            for method, path, body in (("GET", "/projects", None), ("POST", "/projects", {"name": "x"}),
                                       ("PUT", "/projects/demo/quotas", {"images": 1}), ("GET", "/users", None),
                                       ("POST", "/users", {"name": "x", "password": "p", "project": "demo"}),
                                       ("POST", "/users/demo/roles", {"project": "alt", "role": "admin"}),
                                       ("DELETE", "/users/alt/roles/alt/member", None),
                                       ("POST", "/users/alt/actions/disable", None), ("DELETE", "/users/alt", None),
                                       ("GET", "/access-keys", None), ("POST", "/access-keys", {"user": "demo"}),
                                       ("GET", "/bucket-grants", None),
                                       ("POST", "/bucket-grants", {"bucket": "b-1", "project": "demo"})):
                resp = http.request(method, A + path, json=body)
                assert resp.status_code == 403, (method, path, resp.text)
                assert resp.json()["error"]["code"] and resp.json()["error"]["status"] == 403
    assert login(server, "alt", "alt", "alt").status_code == 201      # nothing changed
    assert httpx.get(f"{server.url}{A}/projects").status_code == 401


def test_projects_users_roles_and_quotas(server):
    name = f"adm-{uuid.uuid4().hex[:6]}"
    with server.client("admin") as http:
        made = http.post(f"{A}/projects", json={"name": name})
        assert made.status_code == 201, made.text
        project_id = made.json()["project"]["id"]
        assert http.post(f"{A}/projects", json={"name": name}).status_code == 409
        assert http.post(f"{A}/projects", json={"name": name, "colour": "red"}).status_code == 400
        listed = {p["name"]: p for p in http.get(f"{A}/projects").json()["projects"]}
        assert listed[name]["id"] == project_id and listed[name]["quotas"] == {"images": -1, "bytes": -1}
        assert listed[name]["region"] is None          # acts in the default region
        unknown = http.post(f"{A}/projects", json={"name": f"{name}-r", "region": "mars-1"})
        assert unknown.status_code == 400 and "mars-1" in unknown.text
        assert f"{name}-r" not in {p["name"] for p in http.get(f"{A}/projects").json()["projects"]}

        quota = http.put(f"{A}/projects/{name}/quotas", json={"images": 1, "bytes": 1 << 30})
        assert quota.status_code == 200, quota.text
        assert quota.json()["project"]["quotas"] == {"images": 1, "bytes": 1 << 30}
        assert http.put(f"{A}/projects/{name}/quotas", json={"images": -5}).status_code == 400
        assert http.put(f"{A}/projects/nope-{name}/quotas", json={"images": 1}).status_code == 404

        user = http.post(f"{A}/users", json={"name": name, "password": "pw-1", "project": name, "role": "member"})
        assert user.status_code == 201, user.text
        assert http.post(f"{A}/users", json={"name": "x", "password": "p", "project": name,
                                             "role": "king"}).status_code == 400
        assert http.post(f"{A}/users", json={"name": "x", "password": "p", "project": "nope-x"}).status_code == 404
    token = login(server, name, "pw-1", name)
    assert token.status_code == 201
    with httpx.Client(base_url=server.url, headers={"X-Subject-Token": "", "X-Auth-Token": token.headers["X-Subject-Token"]}) as own:
        body = {"name": "q1", "disk_format": "raw", "container_format": "bare"}
        assert own.post("/v2/images", json=body).status_code == 201
        assert own.post("/v2/images", json={**body, "name": "q2"}).status_code == 413    # the quota of 1 holds
    assert login(server, name, "pw-1", "alt").status_code == 401          # no role on alt yet
    with server.client("admin") as http:
        assert http.post(f"{A}/users/{name}/roles", json={"project": "alt", "role": "reader"}).status_code == 204
        assert http.post(f"{A}/users/{name}/roles", json={"project": "alt", "role": "boss"}).status_code == 400
        users = {u["name"]: u for u in http.get(f"{A}/users").json()["users"]}
        roles = {(r["project_id"], r["role"]) for r in users[name]["roles"]}
        assert roles == {(project_id, "member"), (server.project_id("alt"), "reader")}
        assert "password" not in str(users[name]) and "password_hash" not in users[name]
    on_alt = login(server, name, "pw-1", "alt")
    assert on_alt.status_code == 201
    with server.client("admin") as http:
        assert http.delete(f"{A}/users/{name}/roles/alt/reader").status_code == 204
        assert http.delete(f"{A}/users/{name}/roles/alt/reader").status_code == 404
    ended = httpx.get(f"{server.url}/v2/images", headers={"X-Auth-Token": on_alt.headers["X-Subject-Token"]})
    assert ended.status_code == 401                    # its token on alt ended with the role
    assert login(server, name, "pw-1", "alt").status_code == 401
    with server.client("admin") as http:
        assert http.post(f"{A}/users/{name}/roles", json={"project": "alt", "role": "reader"}).status_code == 204
        assert http.post(f"{A}/users/{name}/actions/disable").json()["user"]["enabled"] is False
        assert login(server, name, "pw-1", name).status_code == 401
        assert http.post(f"{A}/users/{name}/actions/enable").status_code == 200
        assert login(server, name, "pw-1", name).status_code == 201
        assert http.post(f"{A}/users/{name}/actions/explode").status_code == 400
        assert http.delete(f"{A}/users/{name}").status_code == 204
        assert http.delete(f"{A}/users/{name}").status_code == 404
    assert login(server, name, "pw-1", name).status_code == 401


def test_access_keys_show_their_secret_once(server):
    with server.client("admin") as http:
        made = http.post(f"{A}/access-keys", json={"user": "alt"})
        assert made.status_code == 201, made.text
        key = made.json()["access_key"]
        assert key["secret_key"] and key["user_id"] and made.headers["cache-control"] == "no-store"
        listed = http.get(f"{A}/access-keys").json()["access_keys"]
        mine = [k for k in listed if k["access_key"] == key["access_key"]]
        assert mine and mine[0]["user_name"] == "alt" and mine[0]["enabled"] is True
        assert key["secret_key"] not in http.get(f"{A}/access-keys").text
        assert http.post(f"{A}/access-keys", json={"user": "nobody-here"}).status_code == 404
        ak = key["access_key"]
        assert http.post(f"{A}/access-keys/{ak}/actions/disable").json()["access_key"]["enabled"] is False
        assert http.post(f"{A}/access-keys/{ak}/actions/enable").json()["access_key"]["enabled"] is True
        assert http.delete(f"{A}/access-keys/{ak}").status_code == 204
        assert http.delete(f"{A}/access-keys/{ak}").status_code == 404
        assert all(k["access_key"] != ak for k in http.get(f"{A}/access-keys").json()["access_keys"])


def test_bucket_grants(server):
    bucket = f"grant-{uuid.uuid4().hex[:8]}"
    with server.client("admin") as http:
        made = http.post(f"{A}/bucket-grants", json={"bucket": bucket, "project": "demo"})
        assert made.status_code == 201, made.text
        assert made.json()["bucket_grant"]["project_id"] == server.project_id("demo")
        grants = http.get(f"{A}/bucket-grants").json()["bucket_grants"]
        assert {"bucket": bucket, "project_id": server.project_id("demo")}.items() <= \
            next(g for g in grants if g["bucket"] == bucket).items()
        assert http.post(f"{A}/bucket-grants", json={"bucket": "Bad_Bucket!", "project": "demo"}).status_code == 400
        assert http.post(f"{A}/bucket-grants", json={"bucket": bucket, "project": "nope-p"}).status_code == 404
        assert http.delete(f"{A}/bucket-grants/{bucket}/projects/demo").status_code == 204
        assert http.delete(f"{A}/bucket-grants/{bucket}/projects/demo").status_code == 404
        assert all(g["bucket"] != bucket for g in http.get(f"{A}/bucket-grants").json()["bucket_grants"])
