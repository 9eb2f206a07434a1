"""At most N concurrent uploads per project; the excess is TooManyRequests at once."""

from __future__ import annotations

from contextlib import ExitStack

import pytest

from vmimage.core.errors import TooManyRequests
from vmimage.core.upload_slots import UploadSlots


def test_the_excess_of_one_project_is_throttled_and_others_are_not():
    slots = UploadSlots(2)
    with ExitStack() as stack:
        stack.enter_context(slots.hold("p"))
        stack.enter_context(slots.hold("p"))
        with pytest.raises(TooManyRequests) as refused:
            stack.enter_context(slots.hold("p"))
        assert refused.value.fields["retry_after"] > 0
        with slots.hold("q"):
            assert slots.held("q") == 1
        assert slots.held("p") == 2
    assert slots.held("p") == 0
    with slots.hold("p"):       # freed slots are reused
        pass


def test_a_failing_upload_gives_its_slot_back():
    slots = UploadSlots(1)
    with pytest.raises(RuntimeError):
        with slots.hold("p"):
            raise RuntimeError("upload failed")
    assert slots.held("p") == 0


def test_negative_means_no_limit():
    slots = UploadSlots(-1)
    with ExitStack() as stack:
        for _ in range(100):
            stack.enter_context(slots.hold("p"))
        assert slots.held("p") == 100
