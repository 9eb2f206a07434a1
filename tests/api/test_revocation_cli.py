"""`vmimage admin access-key list|disable|enable|delete` and `vmimage admin user
disable|enable|delete`, end to end: two server processes on one database (SQLite, and
PostgreSQL where revocations reach the other process by notification), the official SDKs
(huaweicloudsdkims, jdcloud-sdk) and Keystone tokens; each command takes effect on the very
next request to either process, although both remember the tokens they validated."""

from __future__ import annotations

import base64
import json
import subprocess

import httpx
import pytest

pytest.importorskip("huaweicloudsdkims")
from huaweicloudsdkcore.auth.credentials import BasicCredentials  # noqa: E402
from huaweicloudsdkcore.exceptions.exceptions import ClientRequestException  # noqa: E402
from huaweicloudsdkims.v2 import ImsClient  # noqa: E402
from huaweicloudsdkims.v2 import model as m  # noqa: E402
from jdcloud_sdk.core.config import Config  # noqa: E402
from jdcloud_sdk.core.credential import Credential  # noqa: E402
from jdcloud_sdk.services.vm.apis.DescribeImagesRequest import (DescribeImagesParameters,  # noqa: E402
                                                                DescribeImagesRequest)
from jdcloud_sdk.services.vm.client.VmClient import VmClient  # noqa: E402

from tests.conftest import VMIMAGE, auth_body, start_server  # noqa: E402
from tests.integration.test_revocations import database_url  # noqa: E402,F401 - the fixture

TOKENS = "/identity/v3/auth/tokens"


@pytest.fixture
def pair(tmp_path, database_url):  # noqa: F811
    """Two server processes on one database."""
    first = start_server(tmp_path, database_url)
    second = start_server(tmp_path, database_url, provision=False, data_dir=first.data_dir)
    yield first, second
    second.stop()
    first.stop()


def admin(srv, *args: str) -> dict | list:
    return json.loads(srv.admin_cli(*args))


def refused_admin(srv, *args: str) -> str:
    out = subprocess.run([*VMIMAGE, "admin", "--data-dir", str(srv.data_dir), *args], env=srv.env,
                         capture_output=True, text=True, timeout=120)
    assert out.returncode != 0, out.stdout
    return out.stderr


class Signed:
    """An access key, through both signed faces' SDKs, against one process."""

    def __init__(self, srv, key: dict) -> None:
        self.ims = ImsClient.new_builder().with_credentials(
            BasicCredentials(key["access_key"], key["secret_key"], key["project_id"])).with_endpoints([srv.url]).build()
        self.jd = VmClient(Credential(key["access_key"], key["secret_key"]),
                           Config(srv.url.removeprefix("http://"), scheme="http", timeout=60))

    def ims_status(self) -> int:
        try:
            self.ims.list_images(m.ListImagesRequest())
        except ClientRequestException as exc:
            return exc.status_code
        return 200

    def jd_status(self) -> int:
        params = DescribeImagesParameters("cn-north-1")
        params.setImageSource("private")
        resp = self.jd.send(DescribeImagesRequest(params))
        return 200 if resp.error is None else resp.error.code


def accepted_everywhere(signed: list[Signed]) -> list[int]:
    return [s.ims_status() for s in signed] + [s.jd_status() for s in signed]


def login(srv, user: str, password: str, project: str = "demo") -> httpx.Response:
    return httpx.post(srv.url + TOKENS, json=auth_body(user, password, project), timeout=60)


def basic(srv, user: str, password: str) -> httpx.Response:
    creds = base64.b64encode(f"{user}:{password}".encode()).decode()
    return httpx.get(f"{srv.url}/aries/api/v1/image/list", headers={"Authorization": f"Basic {creds}"}, timeout=60)


def glance_list(srv, token: str) -> int:
    return httpx.get(f"{srv.url}/v2/images", headers={"X-Auth-Token": token}, timeout=60).status_code


def test_an_access_key_is_listed_disabled_enabled_and_deleted_in_every_process(pair):
    first, second = pair
    key = admin(first, "access-key", "create", "--user", "demo")
    other = admin(first, "access-key", "create", "--user", "alt")
    signed = [Signed(first, key), Signed(second, key)]
    assert accepted_everywhere(signed) == [200] * 4
    listed = admin(second, "access-key", "list")
    assert {k["access_key"]: (k["user_name"], k["enabled"]) for k in listed} == {
        key["access_key"]: ("demo", True), other["access_key"]: ("alt", True)}
    assert set(listed[0]) == {"access_key", "user_id", "user_name", "project_id", "enabled", "created_at"}
    text = json.dumps(listed)
    assert key["secret_key"] not in text and other["secret_key"] not in text
    assert [k["access_key"] for k in admin(first, "access-key", "list", "--user", "alt")] == [other["access_key"]]

    assert admin(second, "access-key", "disable", key["access_key"])["enabled"] is False
    assert accepted_everywhere(signed) == [401] * 4
    assert Signed(first, other).ims_status() == 200             # other keys go on
    assert [k["enabled"] for k in admin(first, "access-key", "list", "--user", "demo")] == [False]
    assert admin(first, "access-key", "enable", key["access_key"])["enabled"] is True
    assert accepted_everywhere(signed) == [200] * 4

    assert admin(second, "access-key", "delete", key["access_key"])["deleted"] is True
    assert accepted_everywhere(signed) == [401] * 4
    assert [k["access_key"] for k in admin(first, "access-key", "list")] == [other["access_key"]]
    assert "not found" in refused_admin(first, "access-key", "enable", key["access_key"])
    assert "not found" in refused_admin(first, "access-key", "list", "--user", "nobody")


def test_a_disabled_user_is_refused_at_once_by_every_process_and_a_deleted_one_is_gone(pair):
    first, second = pair
    first.admin_cli("user", "create", "carol", "--project", "demo", "--role", "member", "--password", "pw")
    key = admin(first, "access-key", "create", "--user", "carol")
    signed = [Signed(first, key), Signed(second, key)]
    token = login(first, "carol", "pw").headers["X-Subject-Token"]
    # Both processes validate the token, and remember it.
    assert [glance_list(srv, token) for srv in pair for _ in range(2)] == [200] * 4
    assert basic(second, "carol", "pw").status_code == 200
    assert accepted_everywhere(signed) == [200] * 4

    disabled = admin(second, "user", "disable", "carol")
    assert disabled["enabled"] is False and disabled["tokens_revoked"] == 1
    assert [glance_list(srv, token) for srv in pair] == [401, 401]
    assert [login(srv, "carol", "pw").status_code for srv in pair] == [401, 401]
    assert basic(first, "carol", "pw").json()["code"] == "Unauthorized"
    assert accepted_everywhere(signed) == [401] * 4
    # Others are untouched.
    assert glance_list(second, second.token("demo")) == 200

    assert admin(first, "user", "enable", "carol")["enabled"] is True
    assert [glance_list(srv, token) for srv in pair] == [401, 401]    # a revoked token stays revoked
    fresh = login(second, "carol", "pw")
    assert fresh.status_code == 201
    assert [glance_list(srv, fresh.headers["X-Subject-Token"]) for srv in pair] == [200, 200]
    assert basic(first, "carol", "pw").status_code == 200
    assert accepted_everywhere(signed) == [200] * 4

    gone = admin(first, "user", "delete", "carol")
    assert (gone["deleted"], gone["access_keys_deleted"], gone["tokens_deleted"]) == (True, 1, 2)
    assert [glance_list(srv, fresh.headers["X-Subject-Token"]) for srv in pair] == [401, 401]
    assert [login(srv, "carol", "pw").status_code for srv in pair] == [401, 401]
    assert basic(second, "carol", "pw").status_code == 401
    assert accepted_everywhere(signed) == [401] * 4
    assert all(k["user_name"] != "carol" for k in admin(second, "access-key", "list"))
    assert "not found" in refused_admin(second, "user", "disable", "carol")


def test_a_token_revoked_through_one_process_is_refused_by_the_other_at_once(pair):
    first, second = pair
    token = login(first, "demo", "demo").headers["X-Subject-Token"]
    assert [glance_list(srv, token) for srv in pair] == [200, 200]
    revoked = httpx.delete(first.url + TOKENS, headers={"X-Auth-Token": token, "X-Subject-Token": token})
    assert revoked.status_code == 204
    assert glance_list(second, token) == 401
