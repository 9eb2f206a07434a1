"""The core's Identity port: an access key stands for its secret and its user's caller, with
the built-in identity and behind an external Keystone alike."""

from __future__ import annotations

import pytest

from vmimage.bootstrap import build
from vmimage.core.errors import Unauthenticated
from vmimage.identity.external import ExternalKeystone
from vmimage.settings import Settings


@pytest.fixture
def container(server):
    built = build(Settings(data_dir=server.data_dir, database_url=server.env.get("VMIMAGE_DATABASE_URL")),
                  migrate=False)
    yield built
    built.close()


def test_access_key_resolves_to_secret_and_caller(server, container):
    key = container.identity.create_access_key("demo")
    for port in (container.auth, ExternalKeystone(f"{server.url}/identity/v3", "admin", "admin", "admin",
                                                  local=container.identity)):
        grant = port.access_key(key.access_key)
        assert grant.secret == key.secret
        assert grant.caller.project_id == server.project_id("demo")
        assert grant.caller.roles >= {"member", "reader"} and not grant.caller.is_admin
        for unknown in ("", "NOSUCHKEY", key.secret):
            with pytest.raises(Unauthenticated):
                port.access_key(unknown)
