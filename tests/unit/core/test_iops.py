"""Provisioned IOPS (ssd.io1): step 10, 200 .. min(32000, 50 x GB), default 30 x GB."""

import pytest

from vmimage.core.errors import OutOfRange
from vmimage.core.images import check_ref
from vmimage.core.inventory import Volume, check_iops


@pytest.mark.parametrize("size,iops,expected", [
    (40, 500, 500),          # the createImage page's own example
    (40, None, 1200),        # default 30 x GB
    (40, 2000, 2000),        # the top: 50 x GB
    (1000, 32000, 32000),    # the ceiling
    (1000, None, 30000),
    (5, None, 200),          # the floor wins over 30 x GB
])
def test_accepted(size, iops, expected):
    assert check_iops("ssd.io1", size, iops) == expected


@pytest.mark.parametrize("size,iops", [(40, 505), (40, 190), (40, 2010), (1000, 32010), (40, "500"), (40, True)])
def test_refused(size, iops):
    with pytest.raises(OutOfRange):
        check_iops("ssd.io1", size, iops)


def test_other_types_ignore_it_and_volumes_keep_their_table_without_one():
    assert check_iops("ssd.gp1", 40, 999999) is None
    assert check_iops("ssd.io1", 40, None, default=False) is None
    assert Volume("v", "p", None, 2, "ssd.io1").iops == 1800
    assert Volume("v", "p", None, 40, "ssd.io1", provisioned_iops=500).iops == 500


def test_a_face_may_choose_a_short_ref():
    assert check_ref("img-m5s0abcd29") == "img-m5s0abcd29"
    with pytest.raises(Exception):
        check_ref("img-UPPER12345")


def test_new_refs_are_short_refs_of_every_base36_character():
    from vmimage.core.images import new_image_ref
    refs = [new_image_ref() for _ in range(2000)] + [new_image_ref(10) for _ in range(200)]
    assert all(check_ref(r) == r for r in refs)
    assert {len(r) for r in refs} == {16, 14}
    assert len(set(refs)) == len(refs)
    assert set("".join(r[4:] for r in refs)) == set("0123456789abcdefghijklmnopqrstuvwxyz")
