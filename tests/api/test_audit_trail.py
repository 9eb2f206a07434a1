"""The audit trail, end to end: a real server, the official clients (openstacksdk,
huaweicloudsdkims) and the admin command; `vmimage admin audit list --json` shows who, what,
when, from where, the outcome and the request id of each event, never a secret; events older
than VMIMAGE_AUDIT_DAYS go when the service starts. SQLite, and PostgreSQL with
VMIMAGE_TEST_DB=postgres."""

from __future__ import annotations

import base64
import getpass
import json
import shutil
import subprocess
import time
from datetime import datetime, timedelta, timezone

import httpx
import pytest

pytest.importorskip("huaweicloudsdkims")
import openstack  # noqa: E402
from huaweicloudsdkcore.auth.credentials import BasicCredentials  # noqa: E402
from huaweicloudsdkcore.exceptions.exceptions import ClientRequestException  # noqa: E402
from huaweicloudsdkims.v2 import ImsClient  # noqa: E402
from huaweicloudsdkims.v2 import model as m  # noqa: E402

from tests.conftest import VMIMAGE, sdk_connect, start_server  # noqa: E402

WRONG_PASSWORD = "not-the-password-7Qx"


@pytest.fixture(scope="module")
def srv(tmp_path_factory, database_factory):
    """A server of this module's own: its trail holds only what these tests did."""
    server = start_server(tmp_path_factory.mktemp("audit"), database_factory())
    yield server
    server.stop()
    shutil.rmtree(server.data_dir, ignore_errors=True)


def audit_list(srv, *args: str) -> list[dict]:
    return [json.loads(line) for line in srv.admin_cli("audit", "list", "--json", *args).splitlines()]


def only(events: list[dict], **fields) -> dict:
    found = [e for e in events if all(e[k] == v for k, v in fields.items())]
    assert len(found) == 1, (fields, events)
    return found[0]


def test_a_failed_keystone_login_through_openstacksdk(srv):
    conn = openstack.connect(
        auth_url=f"{srv.url}/identity/v3", username="demo", password=WRONG_PASSWORD, project_name="demo",
        user_domain_name="Default", project_domain_name="Default", identity_api_version="3")
    with pytest.raises(openstack.exceptions.SDKException) as refused:
        conn.authorize()
    event = only(audit_list(srv, "--kind", "login"), user_name="demo")
    assert event["outcome"] == "failure" and event["target"] == "demo"
    assert event["user_id"]                              # the user exists: named by id as well
    assert event["address"] == "127.0.0.1" and event["request_id"] and event["request_id"] in str(refused.value)
    assert event["project_id"] is None
    assert datetime.fromisoformat(event["at"].removesuffix("Z")) > datetime.now(timezone.utc).replace(
        tzinfo=None) - timedelta(minutes=5)
    assert WRONG_PASSWORD not in srv.admin_cli("audit", "list", "--json")


def test_guessed_aries_basic_logins_failed_then_braked(srv):
    srv.admin_cli("user", "create", "guessed", "--project", "demo", "--role", "member", "--password", "right")
    statuses: list[int] = []
    while 429 not in statuses:
        creds = base64.b64encode(f"guessed:guess-{len(statuses)}".encode()).decode()
        statuses.append(httpx.get(f"{srv.url}/aries/api/v1/image/list", timeout=60,
                                  headers={"Authorization": f"Basic {creds}"}).status_code)
        assert len(statuses) <= 13, statuses
    events = [e for e in audit_list(srv, "--kind", "login") if e["user_name"] == "guessed"]
    outcomes = [e["outcome"] for e in reversed(events)]
    assert outcomes == ["failure"] * (len(statuses) - 1) + ["braked"]
    assert only(events, detail="brake engaged")["outcome"] == "failure"
    assert all(e["address"] == "127.0.0.1" and e["request_id"] for e in events)
    assert "guess-" not in srv.admin_cli("audit", "list", "--json")


def test_access_keys_made_and_disabled_by_the_admin_command(srv):
    key = json.loads(srv.admin_cli("access-key", "create", "--user", "demo"))
    srv.admin_cli("access-key", "disable", key["access_key"])
    srv.admin_cli("access-key", "enable", key["access_key"])
    events = audit_list(srv, "--project", "demo")
    for kind in ("access_key.create", "access_key.disable", "access_key.enable"):
        event = only(events, kind=kind, target=key["access_key"])
        assert event["outcome"] == "success"
        assert event["address"] == "cli" and event["user_name"] == getpass.getuser()
        assert event["target_project_id"] == key["project_id"] and event["request_id"] is None
    # newest first
    kinds = [e["kind"] for e in events if e["target"] == key["access_key"]]
    assert kinds == ["access_key.enable", "access_key.disable", "access_key.create"]
    assert key["secret_key"] not in srv.admin_cli("audit", "list", "--json")


def test_a_bad_signature_through_huaweicloudsdkims(srv):
    key = json.loads(srv.admin_cli("access-key", "create", "--user", "alt"))
    client = ImsClient.new_builder().with_credentials(
        BasicCredentials(key["access_key"], key["secret_key"][::-1], key["project_id"])).with_endpoints(
        [srv.url]).build()
    with pytest.raises(ClientRequestException) as refused:
        client.list_images(m.ListImagesRequest())
    assert refused.value.status_code == 401
    event = only(audit_list(srv, "--kind", "signature"), target=key["access_key"])
    assert event["outcome"] == "failure" and event["address"] == "127.0.0.1"
    assert event["request_id"] == refused.value.request_id
    trail = srv.admin_cli("audit", "list", "--json")
    assert key["secret_key"] not in trail and key["secret_key"][::-1] not in trail


def test_a_bucket_grant_and_revoke(srv):
    srv.admin_cli("bucket", "grant", "audited-bucket", "--project", "demo")
    srv.admin_cli("bucket", "revoke", "audited-bucket", "--project", "demo")
    events = audit_list(srv, "--kind", "bucket.grant") + audit_list(srv, "--kind", "bucket.revoke")
    demo_project = srv.project_id("demo")
    for event in events:
        assert event["target"] == "audited-bucket" and event["target_project_id"] == demo_project
        assert event["address"] == "cli"
    assert sorted(e["kind"] for e in events) == ["bucket.grant", "bucket.revoke"]


def test_sharing_and_deleting_an_image_through_openstacksdk(srv):
    demo = sdk_connect(srv, "demo")
    image = demo.image.create_image(name="audited", disk_format="raw", container_format="bare",
                                    visibility="private")
    demo.image.update_image(image, visibility="shared")
    alt_project, demo_project = srv.project_id("alt"), srv.project_id("demo")
    demo.image.add_member(image, member_id=alt_project)
    sdk_connect(srv, "alt").image.update_member(alt_project, image, status="accepted")
    demo.image.remove_member(alt_project, image)
    demo.image.delete_image(image)
    events = [e for e in audit_list(srv, "--project", demo_project) if e["target"] == image.id]
    assert [(e["kind"], e["detail"]) for e in events] == [
        ("image.delete", None), ("member.remove", f"member {alt_project}"),
        ("member.status", f"member {alt_project} accepted"), ("member.add", f"member {alt_project}"),
        ("image.visibility", "private -> shared")]
    for event in events:
        assert event["address"] == "127.0.0.1" and event["request_id"] and event["outcome"] == "success"
        assert event["target_project_id"] == demo_project
    by_alt = only(events, kind="member.status")
    assert by_alt["project_id"] == alt_project
    assert all(e["project_id"] == demo_project for e in events if e is not by_alt)


def test_a_token_revocation_names_the_token_by_its_audit_id(srv):
    token = srv.token("reader")
    shown = httpx.get(f"{srv.url}/identity/v3/auth/tokens", headers={"X-Auth-Token": token,
                                                                    "X-Subject-Token": token}).json()
    resp = httpx.delete(f"{srv.url}/identity/v3/auth/tokens", headers={"X-Auth-Token": token,
                                                                      "X-Subject-Token": token})
    assert resp.status_code == 204
    srv.tokens.pop("reader")
    event = only(audit_list(srv, "--kind", "token.revoke"), target=shown["token"]["audit_ids"][0])
    assert event["user_name"] == "reader" and event["address"] == "127.0.0.1"
    assert token not in srv.admin_cli("audit", "list", "--json")


def test_filters_bounds_and_the_table(srv):
    assert len(audit_list(srv, "--limit", "2")) == 2
    assert audit_list(srv, "--since", "2099-01-01T00:00:00") == []
    assert audit_list(srv, "--since", "1h")
    assert audit_list(srv, "--kind", "no.such.kind") == []
    table = srv.admin_cli("audit", "list", "--kind", "login")
    assert "login" in table and "failure" in table
    bad = subprocess.run([*VMIMAGE, "admin", "--data-dir", str(srv.data_dir), "audit", "list", "--since", "yesterday"],
                         env=srv.env, capture_output=True, text=True, timeout=120)
    assert bad.returncode != 0 and "--since" in bad.stderr


def test_old_events_are_pruned_when_the_service_starts(tmp_path, database_factory):
    from vmimage.bootstrap import build
    from vmimage.core.audit import AuditEvent
    from vmimage.settings import Settings

    first = start_server(tmp_path, database_factory(), VMIMAGE_AUDIT_DAYS="30")
    try:
        first.admin_cli("bucket", "grant", "recent-bucket", "--project", "demo")
        container = build(Settings(data_dir=first.data_dir, database_url=first.env.get("VMIMAGE_DATABASE_URL")),
                          migrate=False)
        try:
            with container.deps.uow(write=True) as uow:
                now = datetime.now(timezone.utc).replace(tzinfo=None)
                uow.audit.add(AuditEvent("bucket.grant", "success", "old-bucket", at=now - timedelta(days=31)))
                uow.audit.add(AuditEvent("bucket.grant", "success", "kept-bucket", at=now - timedelta(days=29)))
                uow.commit()
        finally:
            container.close()
        assert {e["target"] for e in audit_list(first, "--kind", "bucket.grant")} == {
            "recent-bucket", "old-bucket", "kept-bucket"}
        first.stop()
        again = start_server(tmp_path, first.env.get("VMIMAGE_DATABASE_URL"), provision=False,
                             data_dir=first.data_dir, VMIMAGE_AUDIT_DAYS="30")
        again.stop()
        assert {e["target"] for e in audit_list(first, "--kind", "bucket.grant")} == {"recent-bucket", "kept-bucket"}
    finally:
        first.stop()


def test_old_events_are_pruned_while_the_service_runs_one_process_at_a_time(tmp_path, database_factory):
    """Each serving process's reaper prunes now and then; on PostgreSQL a process finding
    another pruning (its advisory lock held) leaves the rows to it."""
    from sqlalchemy import text

    from vmimage.bootstrap import build
    from vmimage.core.audit import AuditEvent
    from vmimage.core.services.reaper import Reaper
    from vmimage.settings import Settings

    container = build(Settings(data_dir=tmp_path / "data", database_url=database_factory()))
    reaper = None
    try:
        def add_old(target: str) -> None:
            with container.deps.uow(write=True) as uow:
                now = datetime.now(timezone.utc).replace(tzinfo=None)
                uow.audit.add(AuditEvent("bucket.grant", "success", target, at=now - timedelta(days=31)))
                uow.commit()

        def targets() -> set[str | None]:
            with container.deps.uow() as uow:
                return {e.target for e in uow.audit.recent(kind="bucket.grant")}

        add_old("old-bucket")
        with container.deps.uow(write=True) as uow:
            uow.audit.add(AuditEvent("bucket.grant", "success", "new-bucket"))
            uow.commit()
        if container.engine.dialect.name == "postgresql":
            with container.engine.connect() as other:      # another process pruning: this one skips
                other.execute(text("SELECT pg_advisory_lock(x'61756470'::int)"))
                with container.deps.uow(write=True) as uow:
                    assert uow.audit.prune(datetime.now(timezone.utc).replace(tzinfo=None)) == 0
                    uow.commit()
                other.execute(text("SELECT pg_advisory_unlock(x'61756470'::int)"))
                other.commit()
            assert targets() == {"old-bucket", "new-bucket"}
        reaper = Reaper(container.deps, audit_days=30, audit_prune_seconds=0.3)
        reaper.start()
        deadline = time.monotonic() + 10
        while targets() != {"new-bucket"}:
            assert time.monotonic() < deadline, targets()
            time.sleep(0.1)
        add_old("older-bucket")           # and again at the next interval
        while targets() != {"new-bucket"}:
            assert time.monotonic() < deadline, targets()
            time.sleep(0.1)
    finally:
        if reaper is not None:
            reaper.stop()
        container.close()


def test_members_added_by_an_ims_batch_job_name_the_request_that_asked(srv):
    image = sdk_connect(srv, "demo").image.create_image(name="batch-audited", disk_format="raw",
                                                        container_format="bare", visibility="shared")
    key = json.loads(srv.admin_cli("access-key", "create", "--user", "demo"))
    ims = ImsClient.new_builder().with_credentials(
        BasicCredentials(key["access_key"], key["secret_key"], key["project_id"])).with_endpoints([srv.url]).build()
    alt_project = srv.project_id("alt")
    job_id = ims.batch_add_members(m.BatchAddMembersRequest(body=m.BatchAddMembersRequestBody(
        images=[image.id], projects=[alt_project]))).job_id
    deadline = time.monotonic() + 60
    while ims.show_job(m.ShowJobRequest(job_id=job_id)).status != "SUCCESS":
        assert time.monotonic() < deadline, "the batch job did not succeed"
        time.sleep(0.2)
    event = only(audit_list(srv, "--kind", "member.add"), target=image.id)
    assert event["detail"] == f"member {alt_project}" and event["project_id"] == key["project_id"]
    assert event["address"] == "127.0.0.1" and event["request_id"]
