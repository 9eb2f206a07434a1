"""Lists filtered and paged in the database agree with what the core computes in Python:
the platform (platform_of), a machine image's status (machine_status), the shown defaults of
architecture and boot mode, and the total count of a numbered page."""

from __future__ import annotations

import itertools
from datetime import datetime, timedelta

import pytest

from vmimage.bootstrap import build
from vmimage.core import os_catalogue
from vmimage.core.images import (DEFAULT_ARCHITECTURE, BootMode, Image, ImageStatus, OsFamily, Visibility,
                                 new_image_id)
from vmimage.core.listing import ImageQuery, ListScope
from vmimage.core.paging import PageRequest
from vmimage.core.policy import Caller
from vmimage.core.services import images as image_svc
from vmimage.core.services import machine_images as msvc
from vmimage.settings import Settings

ME = Caller("u", "p", frozenset({"member", "reader"}))
S = ImageStatus
_moment = itertools.count()


@pytest.fixture
def deps(tmp_path, database_factory):
    c = build(Settings(data_dir=tmp_path / "data", database_url=database_factory()))
    yield c.deps
    c.close()


def add(deps, **attrs) -> Image:
    at = datetime(2026, 1, 1) + timedelta(seconds=next(_moment))
    image = Image(id=new_image_id(), owner=attrs.pop("owner", ME.project_id), visibility=Visibility.PRIVATE,
                  created_at=at, updated_at=at, **attrs)
    with deps.uow(write=True) as uow:
        uow.images.add(image)
        uow.commit()
    return image


def listed(deps, **terms) -> set[str]:
    query = ImageQuery("", scope=ListScope.ALL, page=PageRequest.everything(), **terms)
    return {i.id for i in image_svc.list_images(deps, ME, query)}


def test_the_platform_filter_agrees_with_platform_of(deps):
    versions = [None, "", "Ubuntu 22.04 server 64bit", "CentOS 7.9 64bit", "Windows Server 2019 Standard 64bit",
                "Debian GNU/Linux 12.0.0 64bit", os_catalogue.OTHER_LINUX, os_catalogue.OTHER_WINDOWS, "Plan 9"]
    distributions = [None, "", "ubuntu", "centos", "windows", "debian"]
    families = [None, OsFamily.LINUX, OsFamily.WINDOWS]
    made = [add(deps, os_version=v, os_distribution=d, os_family=f)
            for v, d, f in itertools.product(versions, distributions, families)]
    expected: dict[str, set[str]] = {}
    for image in made:
        expected.setdefault(os_catalogue.platform_of(image), set()).add(image.id)
    assert {"Ubuntu", "CentOS", "Windows", "Debian", "Other Linux", "Other Windows"} <= set(expected)
    for platform in [*expected, "Other", "Windows Server", "Fedora", ""]:
        assert listed(deps, platform=platform) == expected.get(platform, set()), platform


def test_unset_architecture_and_boot_mode_count_as_the_defaults(deps):
    unset, empty, x86, arm = (add(deps, architecture=a) for a in (None, "", DEFAULT_ARCHITECTURE, "aarch64"))
    assert listed(deps, architecture=DEFAULT_ARCHITECTURE) == {unset.id, empty.id, x86.id}
    assert listed(deps, architecture="aarch64") == {arm.id}
    assert listed(deps, architecture="") == set()
    assert listed(deps, architecture=DEFAULT_ARCHITECTURE, boot_mode="uefi") == set()
    bios, uefi = add(deps, boot_mode=BootMode.BIOS), add(deps, boot_mode=BootMode.UEFI)
    assert listed(deps, boot_mode="bios") == {unset.id, empty.id, x86.id, arm.id, bios.id}
    assert listed(deps, boot_mode="uefi") == {uefi.id}


def machine(deps, status: ImageStatus, *disks: ImageStatus, hidden: ImageStatus | None = None) -> Image:
    """A machine image with data-disk images in these statuses (and a hidden one, which a
    machine image is not shown with)."""
    image = add(deps, status=status)
    for n, disk_status in enumerate(disks):
        add(deps, status=disk_status, parent_id=image.id, device=f"vd{'bcdefgh'[n]}")
    if hidden is not None:
        add(deps, status=hidden, parent_id=image.id, device="vdz", os_hidden=True)
    return image


def test_the_machine_status_filter_agrees_with_machine_status(deps):
    made = [
        machine(deps, S.ACTIVE),
        machine(deps, S.ACTIVE, S.ACTIVE, S.ACTIVE),
        machine(deps, S.ACTIVE, S.KILLED),              # a data disk failed: the machine failed
        machine(deps, S.ACTIVE, S.SAVING, S.ACTIVE),    # a data disk still saving
        machine(deps, S.ACTIVE, S.QUEUED, S.SAVING),
        machine(deps, S.SAVING, S.ACTIVE),
        machine(deps, S.QUEUED, S.DEACTIVATED),
        machine(deps, S.DEACTIVATED, S.PENDING_DELETE),
        machine(deps, S.KILLED, S.SAVING),
        machine(deps, S.ACTIVE, S.DELETED),             # a deleted disk is no longer the machine's
        machine(deps, S.ACTIVE, S.ACTIVE, hidden=S.KILLED),
    ]
    everything = msvc.list_machine_images(deps, ME, ImageQuery("", page=PageRequest.everything()))
    shown = {m.image.id: msvc.machine_status(m) for m in everything}
    assert set(shown) == {m.id for m in made}
    assert shown[made[2].id] == S.KILLED and shown[made[3].id] == S.SAVING and shown[made[9].id] == S.ACTIVE
    assert shown[made[6].id] == S.DEACTIVATED and shown[made[10].id] == S.ACTIVE
    for status in ImageStatus:
        query = ImageQuery("", page=PageRequest.everything(), machine_statuses=[status])
        found = {m.image.id for m in msvc.list_machine_images(deps, ME, query)}
        assert found == {i for i, s in shown.items() if s == status}, status
    query = ImageQuery("", page=PageRequest.everything(), machine_statuses=[S.QUEUED, S.SAVING])
    assert {m.image.id for m in msvc.list_machine_images(deps, ME, query)} == {
        i for i, s in shown.items() if s in (S.QUEUED, S.SAVING)}


def test_numbered_pages_are_cut_and_counted_in_the_database(deps):
    mine = [add(deps, name=f"n{i}") for i in range(7)]
    add(deps, name="theirs", owner="q")                 # not visible to ME: never counted
    newest_first = [i.id for i in reversed(mine)]
    pages = [image_svc.list_images(deps, ME, ImageQuery("", page=PageRequest.numbered(n, 3))) for n in (1, 2, 3, 4)]
    assert [[i.id for i in p] for p in pages] == [newest_first[:3], newest_first[3:6], newest_first[6:], []]
    assert [p.total for p in pages] == [7, 7, 7, 7]
    assert [p.more for p in pages] == [True, True, False, False]
    named = ImageQuery("", contains={"name": "N6"}, page=PageRequest.numbered(1, 3))
    assert image_svc.list_images(deps, ME, named).total == 1
    uncounted = image_svc.list_images(deps, ME, ImageQuery("", page=PageRequest(limit=3)))
    assert uncounted.total is None and uncounted.more
