import pytest

from vmimage.core.errors import Forbidden, Invalid, InvalidTransition, OpaqueFormat
from vmimage.core.images import (OPAQUE_DISK_FORMATS, TRANSITIONS, Image, ImageStatus, TagSet, check_writable_key,
                                 require_readable)

ALL = list(ImageStatus)


def image_in(status: ImageStatus) -> Image:
    return Image(id="i", owner="p", status=status, disk_format="raw", container_format="bare", size=4)


@pytest.mark.parametrize("current,target", [(c, t) for c in ALL for t in ALL])
def test_transition_table_is_the_only_authority(current, target):
    image = image_in(current)
    if target in TRANSITIONS[current]:
        image.move_to(target)
        assert image.status == target
    else:
        with pytest.raises(InvalidTransition):
            image.move_to(target)
        assert image.status == current


def test_data_bearing_status_needs_formats():
    image = Image(id="i", owner="p")
    with pytest.raises(Invalid):
        image.move_to(ImageStatus.SAVING)
    assert image.status == ImageStatus.QUEUED


def test_back_to_queued_clears_data_attributes():
    image = image_in(ImageStatus.SAVING)
    image.virtual_size, image.checksum = 9, "abc"
    image.move_to(ImageStatus.QUEUED)
    assert (image.size, image.virtual_size, image.checksum) == (None, None, None)


@pytest.mark.parametrize("key", ["status", "id", "checksum", "os_glance_import_task", "location", "stores",
                                 "deleted_at", "os_hash_value"])
def test_reserved_keys_are_refused(key):
    with pytest.raises(Forbidden):
        check_writable_key(key)


def test_tags_keep_the_order_given_and_compare_as_sets():
    tags = TagSet(["c", "a", "b", "a"])
    tags.add("d")
    tags.discard("a")
    assert list(tags) == ["c", "b", "d"] and tags == {"b", "c", "d"} and "c" in tags


@pytest.mark.parametrize("disk_format", OPAQUE_DISK_FORMATS)
def test_what_needs_opaque_contents_is_refused(disk_format):
    with pytest.raises(OpaqueFormat):
        require_readable(disk_format, "build a disk")
    require_readable("qcow2", "build a disk")
