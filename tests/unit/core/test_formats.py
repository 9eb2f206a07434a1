import pytest

from vmimage.core.errors import BadImageFormat, UnsafeImage
from vmimage.core.formats import decide
from vmimage.core.ports import InspectionReport


def report(*formats, vsize=None, failures=None):
    return InspectionReport(list(formats), {f: vsize for f in formats if vsize}, failures or {})


def test_match_takes_virtual_size_from_header():
    assert decide("qcow2", "bare", report("qcow2", vsize=100), 10, True).virtual_size == 100


def test_mismatch_is_refused_only_when_enforced():
    with pytest.raises(BadImageFormat):
        decide("vmdk", "bare", report("qcow2", vsize=100), 10, True)
    assert decide("vmdk", "bare", report("qcow2", vsize=100), 10, False).detected == "qcow2"


def test_safety_failures_stay_fatal_without_enforcement():
    with pytest.raises(UnsafeImage):
        decide("qcow2", "bare", report("qcow2", failures={"backing_file": "x"}), 10, False)


def test_more_than_one_format_is_refused_but_iso_with_gpt_is_iso():
    with pytest.raises(UnsafeImage):
        decide("raw", "bare", report("qcow2", "vhd"), 10, True)
    assert decide("iso", "bare", report("iso", "gpt", vsize=5), 10, True).detected == "iso"


@pytest.mark.parametrize("declared", ["raw", "ami", "aki", "ari", "ploop"])
def test_raw_content_accepted_for_raw_like_formats(declared):
    assert decide(declared, "bare", report("raw"), 10, True).virtual_size == 10


def test_declared_raw_with_richer_content_is_accepted_with_byte_size():
    assert decide("raw", "bare", report("qcow2", vsize=100), 10, True).virtual_size == 10


@pytest.mark.parametrize("declared", ["zvhd", "zvhd2"])
def test_opaque_formats_keep_bytes_no_known_format_claims(declared):
    verdict = decide(declared, "bare", report(), 10, True)
    assert (verdict.detected, verdict.virtual_size) == (declared, None)
    with pytest.raises(BadImageFormat):
        decide(declared, "bare", report("qcow2", vsize=100), 10, True)
