"""Metadata definition lists sorted, filtered and paged in the database give the order a sort
in Python of the same rows gives, the order the catalogue promises: by the sort key, items
without a value after those with one, names breaking ties, all of it reversed for "desc"
(key (value is None, value or "", name)); and a page after a marker is the rest of that order.

On PostgreSQL it runs in a database of the default collation and in one whose collation is
ICU's English (where "a" sorts before "B"): text is ordered by code point in both."""

from __future__ import annotations

import uuid
from collections.abc import Callable
from datetime import datetime, timedelta
from typing import Any

import pytest

from tests.conftest import PG_ADMIN_URL
from vmimage.bootstrap import build
from vmimage.core import metadefs as md
from vmimage.core.errors import NotFound
from vmimage.core.paging import Page
from vmimage.core.policy import Caller
from vmimage.core.services import metadef_items as items
from vmimage.core.services import metadefs as svc
from vmimage.core.services.deps import Deps
from vmimage.settings import Settings

ADMIN = Caller("a", "admin-project", frozenset({"admin", "member", "reader"}))
MEMBER = Caller("u", "p", frozenset({"member", "reader"}))
T0 = datetime(2026, 1, 1, 12, 0, 0)
# Names and texts whose order differs between code points and a locale: case, punctuation,
# letters beyond ASCII.
NAMES = ["Alpha", "alpha", "Beta", "beta", "_under", "a-b", "a_b", "a.b", "a b", "Zed", "zed", "\u00fcber",
         "\u00e9t\u00e9", "\u65e5\u672c", "A1", "a1", "a10", "a2", "Gamma", "gamma", "0", "9", "~tilde", "-dash",
         "\u03a9mega", "\u00c9t\u00e9"]
TEXTS = [None, "", " ", "a", "A", "b", "B", "_", "a b", "a_b", "\u00e9", "Z", None]
OWNERS = [None, "p", "q", "P"]
THING = "Test::Thing"


def _icu_database() -> tuple[str, Callable[[], None]]:
    """A fresh PostgreSQL database collating text by ICU's English, and how to drop it."""
    psycopg = pytest.importorskip("psycopg")
    name = f"vmimage_test_icu_{uuid.uuid4().hex[:12]}"
    admin = psycopg.connect(PG_ADMIN_URL, autocommit=True, connect_timeout=3)
    admin.execute(f"CREATE DATABASE \"{name}\" TEMPLATE template0 LOCALE_PROVIDER icu ICU_LOCALE 'en' "
                  "LOCALE 'C.UTF-8'")

    def drop() -> None:
        admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        admin.close()
    base = PG_ADMIN_URL.rsplit("/", 1)[0].replace("postgresql://", "postgresql+psycopg://")
    return f"{base}/{name}", drop


@pytest.fixture(params=["default collation", "ICU collation"])
def deps(request, tmp_path, database_factory):
    drop = None
    if request.param == "default collation":
        url = database_factory()
    elif database_factory() is None:
        pytest.skip("SQLite compares text in one way only")
    else:
        url, drop = _icu_database()
    c = build(Settings(data_dir=tmp_path / "data", database_url=url))
    yield c.deps
    c.close()
    if drop is not None:
        drop()


def python_order(found: list, sort_key: str, sort_dir: str, name_of: Callable[[Any], str]) -> list[str]:
    """What the lists sorted in memory before they were sorted in the database."""
    def key(item):
        value = getattr(item, sort_key)
        return (value is None, value if value is not None else "", name_of(item))
    return [name_of(i) for i in sorted(found, key=key, reverse=sort_dir == "desc")]


def walk(list_page: Callable[[md.ListQuery], Page], name_of: Callable[[Any], str], sort_key: str, sort_dir: str,
         limit: int | None) -> list[str]:
    """Every name, page after page, each page asked for after the last name of the one before."""
    seen: list[str] = []
    marker = None
    while True:
        page = list_page(md.ListQuery(sort_key, sort_dir, marker, limit))
        assert limit is None or len(page) <= limit
        seen += [name_of(i) for i in page]
        if not page.more:
            return seen
        assert page.items, "a page that is followed by another is never empty"
        marker = seen[-1]


def namespace_name(found: tuple[md.Namespace, list]) -> str:
    return found[0].namespace


@pytest.fixture
def catalogue(deps: Deps) -> list[md.Namespace]:
    """The seeded catalogue and namespaces of every kind of value: ties in both timestamps,
    display names and owners missing, empty, in either case."""
    with deps.uow(write=True) as uow:
        uow.metadefs.add_resource_type(md.ResourceType(THING, False, T0, T0))
        for i, name in enumerate(NAMES):
            namespace = md.Namespace(f"test-{i}", name, TEXTS[i % len(TEXTS)], None,
                                     "public" if i % 3 == 0 else "private", False, OWNERS[i % len(OWNERS)],
                                     T0 + timedelta(seconds=i // 3), T0 + timedelta(seconds=(i * 7) % 4))
            uow.metadefs.add_namespace(namespace)
            if i % 2:
                uow.metadefs.add_association(md.Association(namespace.id, THING, None, None, T0, T0))
        uow.commit()
    with deps.uow() as uow:
        return uow.metadefs.page_namespaces(md.NamespaceQuery()).items


@pytest.mark.parametrize("sort_key", md.NAMESPACE_SORT_KEYS)
@pytest.mark.parametrize("sort_dir", ["asc", "desc"])
def test_namespaces_page_in_the_order_of_a_sort_in_python(deps, catalogue, sort_key, sort_dir):
    expected = python_order(catalogue, sort_key, sort_dir, lambda n: n.namespace)
    assert set(NAMES) < set(expected)
    for limit in (1, 4, md.MAX_LIMIT):
        assert walk(lambda q: svc.list_namespaces(deps, ADMIN, q), namespace_name, sort_key, sort_dir,
                    limit) == expected, limit


@pytest.mark.parametrize("sort_key", md.NAMESPACE_SORT_KEYS)
def test_filtered_namespaces_page_in_the_same_order(deps, catalogue, sort_key):
    associated = {f"test-{i}" for i in range(len(NAMES)) if i % 2}
    for visibility in (None, "public", "private"):
        for resource_types in (None, [THING, "Test::Nothing"]):
            chosen = [n for n in catalogue if md.can_read(MEMBER, n)
                      and visibility in (None, n.visibility) and (resource_types is None or n.id in associated)]
            assert chosen, (visibility, resource_types)
            for sort_dir in ("asc", "desc"):
                listed = walk(lambda q: svc.list_namespaces(deps, MEMBER, q, visibility, resource_types),
                              namespace_name, sort_key, sort_dir, 3)
                assert listed == python_order(chosen, sort_key, sort_dir, lambda n: n.namespace), \
                    (visibility, resource_types, sort_dir)


def test_namespace_markers_and_limits_answer_as_before(deps, catalogue):
    assert len(catalogue) > md.DEFAULT_LIMIT
    first = svc.list_namespaces(deps, ADMIN, md.ListQuery())
    assert len(first) == md.DEFAULT_LIMIT and first.more     # the default page size
    with pytest.raises(NotFound, match="namespace 'no-such' was not found"):
        svc.list_namespaces(deps, ADMIN, md.ListQuery(marker="no-such"))
    invisible = next(n.namespace for n in catalogue if not md.can_read(MEMBER, n))
    with pytest.raises(NotFound, match=f"namespace '{invisible}' was not found"):
        svc.list_namespaces(deps, MEMBER, md.ListQuery(marker=invisible))
    private = next(n.namespace for n in catalogue if n.visibility == "private")
    with pytest.raises(NotFound, match=f"Marker '{private}' was not found"):
        svc.list_namespaces(deps, ADMIN, md.ListQuery(marker=private), visibility="public")
    none = svc.list_namespaces(deps, ADMIN, md.ListQuery(limit=0))
    assert none.items == [] and none.more


@pytest.fixture
def content(deps) -> str:
    """A namespace holding tags and objects with ties in both timestamps."""
    with deps.uow(write=True) as uow:
        namespace = md.Namespace("holder", "holder", None, None, "public", False, None, T0, T0)
        uow.metadefs.add_namespace(namespace)
        for i, name in enumerate(NAMES):
            created, updated = T0 + timedelta(seconds=i // 4), T0 + timedelta(seconds=(i * 5) % 3)
            uow.metadefs.add_tag(md.MetadefTag(f"tag-{i}", namespace.id, name, created, updated))
            uow.metadefs.add_object(md.MetadefObject(f"obj-{i}", namespace.id, name, None, None, None,
                                                     created, updated))
        uow.commit()
    return "holder"


@pytest.mark.parametrize("sort_key", md.CHILD_SORT_KEYS)
@pytest.mark.parametrize("sort_dir", ["asc", "desc"])
def test_tags_and_objects_page_in_the_order_of_a_sort_in_python(deps, content, sort_key, sort_dir):
    with deps.uow() as uow:
        holder = uow.metadefs.get_namespace(content)
        assert holder is not None
        tags, objects = uow.metadefs.list_tags(holder.id), uow.metadefs.list_objects(holder.id)
    for found, list_page in ((tags, items.list_tags), (objects, items.list_objects)):
        expected = python_order(found, sort_key, sort_dir, lambda i: i.name)
        assert sorted(expected) == sorted(NAMES)
        for limit in (1, 5, None):
            listed = walk(lambda q: list_page(deps, MEMBER, content, q), lambda i: i.name, sort_key, sort_dir,
                          limit)
            assert listed == expected, (list_page.__name__, limit)


def test_a_child_marker_that_is_not_there_is_not_found(deps, content):
    assert len(items.list_tags(deps, MEMBER, content)) == len(NAMES)    # no limit: every tag
    for list_page in (items.list_tags, items.list_objects):
        with pytest.raises(NotFound, match="Marker 'no-such' was not found"):
            list_page(deps, MEMBER, content, md.ListQuery(marker="no-such"))
