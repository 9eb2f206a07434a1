import pytest

from vmimage.core import os_catalogue
from vmimage.core.errors import Invalid, QuotaExceeded, TooLarge
from vmimage.core.listing import ImageQuery
from vmimage.core.paging import PageRequest
from vmimage.core.policy import Caller, can_see, expand_roles
from vmimage.core.images import Image, OsFamily, Visibility
from vmimage.core.quotas import Limits, check_image_count, check_size_cap


def test_os_catalogue_derives_platform_type_and_bits():
    info = os_catalogue.require("Ubuntu 14.04 server 64bit")
    assert (info.platform, info.os_type, info.os_bit) == ("Ubuntu", "Linux", 64)
    assert os_catalogue.require("CentOS 6.4 32bit").os_bit == 32
    assert os_catalogue.require("Windows Server 2016 Standard 64bit").os_type == "Windows"
    assert os_catalogue.require(" CoreOS 1298.6.0 ").os_bit == 64
    with pytest.raises(Invalid):
        os_catalogue.require("Plan 9")


@pytest.mark.parametrize("distribution,release,expected", [
    ("Ubuntu", "22.04", "Ubuntu 22.04 server 64bit"), ("ubuntu", " 22.04 ", "Ubuntu 22.04 server 64bit"),
    ("centos", "7.9", "CentOS 7.9 64bit"), ("Windows Server", "2019", "Windows Server 2019 Standard 64bit"),
    ("windows", "2012 R2", "Windows Server 2012 R2 Standard 64bit"),
    ("sles", "12 SP5", "SUSE Linux Enterprise Server 12 SP5 64bit"),
    ("ubuntu", "Ubuntu 22.04 server 64bit", "Ubuntu 22.04 server 64bit"),     # the catalogue's own name
    ("centos", "9", None), ("centos", "Ubuntu 22.04 server 64bit", None), (None, "7.9", None), ("centos", None, None),
])
def test_one_mapping_from_a_distribution_release_to_the_catalogue(distribution, release, expected):
    found = os_catalogue.for_release(distribution, release)
    assert (found.os_version if found else None) == expected


def test_settle_completes_and_release_of_reads_back():
    image = Image(id="i", owner="p", os_distribution="ubuntu", os_release="22.04")
    os_catalogue.settle(image)
    assert (image.os_version, image.os_family, os_catalogue.release_of(image)) == (
        "Ubuntu 22.04 server 64bit", OsFamily.LINUX, "22.04")
    catalogued = Image(id="j", owner="p", os_version="Windows Server 2019 Standard 64bit")
    os_catalogue.settle(catalogued)
    assert (catalogued.os_family, catalogued.os_distribution, os_catalogue.release_of(catalogued)) == (
        OsFamily.WINDOWS, "windows", "2019")
    free = Image(id="k", owner="p", os_distribution="alpine", os_release="3.19")
    os_catalogue.settle(free)
    assert (free.os_version, os_catalogue.release_of(free)) == (None, "3.19")


def test_roles_imply_downwards():
    assert expand_roles({"admin"}) == {"admin", "member", "reader"}
    assert expand_roles({"member"}) == {"member", "reader"}
    assert expand_roles({"reader"}) == {"reader"}


def test_visibility_rules():
    me, other = Caller("u", "p", frozenset({"member"})), Caller("u2", "q", frozenset({"member"}))
    shared = Image(id="i", owner="p", visibility=Visibility.SHARED)
    assert can_see(me, shared, None)
    assert not can_see(other, shared, None)
    assert can_see(other, shared, "pending")
    assert can_see(other, Image(id="j", owner="p", visibility=Visibility.COMMUNITY), None)
    assert not can_see(other, Image(id="k", owner="p", visibility=Visibility.PRIVATE), "accepted")


def test_quotas():
    limits = Limits(image_count=2, max_image_size=10)
    check_image_count(limits, lambda: 1)
    with pytest.raises(QuotaExceeded):
        check_image_count(limits, lambda: 2)
    with pytest.raises(TooLarge):
        check_size_cap(limits, 11)
    assert limits.for_project({"image_count": 5}).image_count == 5
    check_image_count(Limits(), lambda: 1 / 0)  # -1 is unlimited: usage is not even asked


def test_query_validation_clamps_and_refuses():
    q = ImageQuery(project_id="p", page=PageRequest(limit=5000))
    q.validate()
    assert q.page.limit == 1000
    with pytest.raises(Invalid):
        ImageQuery(project_id="p", page=PageRequest(limit=-1)).validate()
    with pytest.raises(Invalid):
        ImageQuery(project_id="p", sort=[("bogus", "asc")]).validate()


def test_one_paging_rule():
    from vmimage.core.paging import DEFAULT_LIMIT, MAX_LIMIT, MAX_OFFSET, Page, fetch_size, page_size
    assert page_size(None) == DEFAULT_LIMIT and page_size(None, default=None) is None
    assert page_size(5) == 5 and page_size(10 ** 6) == MAX_LIMIT
    with pytest.raises(Invalid):
        page_size(-1)
    assert fetch_size(3) == 4 and fetch_size(None) is None
    assert Page.cut([1, 2, 3, 4], 3) == Page([1, 2, 3], True)
    assert Page.cut([1, 2, 3], 3) == Page([1, 2, 3], False)
    # page numbers are an offset and a limit the repository runs, counting every match
    assert PageRequest.numbered(2, 4) == PageRequest(limit=4, offset=4, counted=True)
    assert PageRequest.numbered(3, 4, counted=False) == PageRequest(limit=4, offset=8)
    assert PageRequest.numbered(1, 10 ** 6).limit == MAX_LIMIT
    assert PageRequest.numbered(10 ** 18, 100).offset == MAX_OFFSET     # past every list: an empty page
    with pytest.raises(Invalid):
        PageRequest.numbered(0, 10)
    assert PageRequest(limit=3).fetch_limit == 4 and PageRequest.everything().fetch_limit is None
    assert PageRequest(limit=2).cut([1, 2, 3], total=7) == Page([1, 2], True, 7)
