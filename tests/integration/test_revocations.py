"""Revocations reach every process at once (adapters/db/revocations.py): a process remembers
the tokens it validated, without asking the database again, only until a user, an access key
or a token is revoked anywhere (on SQLite and on PostgreSQL, where a notification tells each
process)."""

from __future__ import annotations

import time

import pytest
from sqlalchemy import event, text

from tests.conftest import pg_databases
from vmimage.bootstrap import build
from vmimage.core.errors import NotFound, Unauthenticated
from vmimage.settings import Settings


@pytest.fixture(params=["sqlite", "postgresql"])
def database_url(request):
    """SQLite in the data dir (None), or a fresh PostgreSQL database (skipped when none runs)."""
    if request.param == "sqlite":
        yield None
        return
    with pg_databases("vmimage_revoke") as make:
        yield make()


@pytest.fixture
def two_processes(tmp_path, database_url):
    """Two containers on one database, as two processes of a service (or a server and the
    admin command beside it)."""
    settings = Settings(data_dir=tmp_path / "data", database_url=database_url)
    first = build(settings)
    second = build(settings, migrate=False)
    yield first, second
    second.close()
    first.close()


class Statements:
    """Counts the statements a container's engine sends."""

    def __init__(self, engine) -> None:
        self.count = 0
        event.listen(engine, "before_cursor_execute", self._seen)

    def _seen(self, *_args) -> None:
        self.count += 1


def login(container, user: str, password: str, project: str):
    import asyncio

    body = {"identity": {"methods": ["password"], "password": {"user": {
        "name": user, "password": password, "domain": {"id": "default"}}}},
        "scope": {"project": {"name": project, "domain": {"id": "default"}}}}
    return asyncio.run(container.identity.authenticate(body))


def refused_within(check, seconds: float) -> float:
    """How long until check() raises Unauthenticated (fails beyond seconds)."""
    started = time.monotonic()
    while True:
        try:
            check()
        except Unauthenticated:
            return time.monotonic() - started
        assert time.monotonic() - started < seconds, "still accepted"
        time.sleep(0.005)


def listening(container, seconds: float = 10) -> None:
    deadline = time.monotonic() + seconds
    while container.identity._revocations.epoch() is None:
        assert time.monotonic() < deadline, "the feed does not listen"
        time.sleep(0.02)


def test_a_validated_token_is_remembered_without_asking_the_database(two_processes):
    first, second = two_processes
    second.identity.ensure_project("p")
    second.identity.create_user("u", "pw", "p", "member")
    token = login(second, "u", "pw", "p")
    listening(first)
    assert first.identity.validate(token.id).user.name == "u"
    statements = Statements(first.engine)
    for _ in range(20):
        assert first.identity.validate(token.id).user.name == "u"
        assert first.identity.cached_caller(token.id).user_id == token.user.id
    assert statements.count == 0


def test_disabling_a_user_stops_their_tokens_in_every_process_at_once(two_processes):
    first, second = two_processes
    second.identity.ensure_project("p")
    second.identity.create_user("u", "pw", "p", "member")
    token = login(second, "u", "pw", "p")
    listening(first)
    assert first.identity.validate(token.id).user.name == "u"       # remembered from now on
    _, revoked = second.identity.set_user_enabled("u", False)
    assert revoked == 1
    took = refused_within(lambda: first.identity.validate(token.id), 1.0)
    assert first.identity.cached_caller(token.id) is None
    print(f"\nrefused by the other process {took * 1000:.1f} ms after the commit")
    # Enabled again: the user logs in again, the revoked token stays dead.
    second.identity.set_user_enabled("u", True)
    fresh = login(second, "u", "pw", "p")
    assert first.identity.validate(fresh.id).user.name == "u"
    with pytest.raises(Unauthenticated):
        first.identity.validate(token.id)


def test_deleting_a_user_takes_their_keys_and_tokens(two_processes):
    first, second = two_processes
    second.identity.ensure_project("p")
    second.identity.create_user("gone", "pw", "p", "member")
    key = second.identity.create_access_key("gone")
    token = login(second, "gone", "pw", "p")
    listening(first)
    first.identity.validate(token.id)
    assert first.identity.access_key(key.access_key).secret == key.secret
    user, keys, tokens = second.identity.delete_user("gone")
    assert (user.name, keys, tokens) == ("gone", 1, 1)
    refused_within(lambda: first.identity.validate(token.id), 1.0)
    with pytest.raises(Unauthenticated):
        first.identity.access_key(key.access_key)
    assert all(k.access_key != key.access_key for k, _ in first.identity.list_access_keys())
    with pytest.raises(NotFound):
        second.identity.delete_user("gone")
    with pytest.raises(Unauthenticated):
        login(first, "gone", "pw", "p")


def test_a_disabled_access_key_is_refused_and_listed_without_its_secret(two_processes):
    first, second = two_processes
    second.identity.ensure_project("p")
    second.identity.create_user("k", "pw", "p", "member")
    key = second.identity.create_access_key("k")
    other = second.identity.create_access_key("k")
    assert first.identity.access_key(key.access_key).secret == key.secret
    assert not second.identity.set_access_key_enabled(key.access_key, False).enabled
    with pytest.raises(Unauthenticated, match="disabled"):
        first.identity.access_key(key.access_key)
    assert first.identity.access_key(other.access_key).secret == other.secret       # only that key
    listed = {k.access_key: (k, u.name) for k, u in first.identity.list_access_keys("k")}
    assert listed[key.access_key][0].enabled is False and listed[other.access_key][0].enabled is True
    assert {name for _, name in listed.values()} == {"k"}
    second.identity.set_access_key_enabled(key.access_key, True)
    assert first.identity.access_key(key.access_key).secret == key.secret
    second.identity.delete_access_key(key.access_key)
    with pytest.raises(Unauthenticated):
        first.identity.access_key(key.access_key)
    with pytest.raises(NotFound):
        second.identity.set_access_key_enabled(key.access_key, True)


def test_a_revoked_token_is_refused_by_the_other_process_at_once(two_processes):
    first, second = two_processes
    second.identity.ensure_project("p")
    second.identity.create_user("r", "pw", "p", "member")
    token = login(second, "r", "pw", "p")
    listening(first)
    first.identity.validate(token.id)
    second.identity.revoke(token.id)
    refused_within(lambda: first.identity.validate(token.id), 1.0)


def test_a_listener_that_lost_its_connection_trusts_nothing_until_it_listens_again(two_processes, database_url):
    if database_url is None:
        pytest.skip("PostgreSQL only: SQLite reads the epoch at each call")
    first, second = two_processes
    second.identity.ensure_project("p")
    second.identity.create_user("l", "pw", "p", "member")
    token = login(second, "l", "pw", "p")
    listening(first)
    first.identity.validate(token.id)
    feed = first.identity._revocations
    before = feed.epoch()
    with second.engine.connect() as conn:     # the server drops the listener's connection
        dropped = conn.execute(text("SELECT pg_terminate_backend(pid) FROM pg_stat_activity "
                                    "WHERE query LIKE 'LISTEN vmimage_revocations%' AND datname = current_database()"
                                    )).fetchall()
        conn.commit()
    assert dropped == [(True,)]
    deadline = time.monotonic() + 5
    while feed.epoch() == before:
        assert time.monotonic() < deadline, "the dropped listener went unnoticed"
        time.sleep(0.01)
    listening(first)
    assert feed.epoch() != before      # what happened meanwhile is unknown: nothing old is trusted
    statements = Statements(first.engine)
    first.identity.validate(token.id)
    assert statements.count > 0
