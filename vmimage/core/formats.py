"""Deciding what inspected content means for an image's declared disk_format."""

from __future__ import annotations

from dataclasses import dataclass

from vmimage.core.errors import BadImageFormat, UnsafeImage
from vmimage.core.images import OPAQUE_DISK_FORMATS
from vmimage.core.ports import InspectionReport

# Declared formats that carry raw bytes whatever the content looks like.
_RAW_LIKE = {"ami", "aki", "ari", "ploop"}


@dataclass(frozen=True)
class FormatVerdict:
    detected: str
    virtual_size: int | None


def decide(declared: str | None, container: str | None, report: InspectionReport,
           size: int, enforce_match: bool) -> FormatVerdict:
    """Apply Glance's rules; raise BadImageFormat/UnsafeImage when the data must be refused.

    Safety checks apply to what was detected, whatever was declared, so they stay on even
    when the declared/detected match is not enforced.
    """
    formats = list(report.formats)
    if set(formats) == {"iso", "gpt"}:
        formats = ["iso"]  # a bootable ISO carries a GPT as well
    if len(formats) > 1:
        raise UnsafeImage(f"More than one format detected: {', '.join(sorted(formats))}")
    detected = formats[0] if formats else "raw"
    if report.safety_failures:
        reasons = "; ".join(f"{k}: {v}" for k, v in sorted(report.safety_failures.items()))
        raise UnsafeImage(f"Image content failed safety checks ({reasons})",
                          failures=report.safety_failures)
    vsize = report.virtual_sizes.get(detected)
    if detected == "raw":
        vsize = size
    if container not in (None, "bare") or not enforce_match:
        return FormatVerdict(detected, vsize if declared == detected or detected == "raw" else None)
    if declared == detected:
        return FormatVerdict(detected, vsize)
    if declared in OPAQUE_DISK_FORMATS and detected == "raw":
        # Bytes no known format claims: kept under the declared name, their size unknown.
        return FormatVerdict(declared, None)
    if declared == "raw":
        return FormatVerdict(detected, size)  # upstream accepts richer content declared raw
    if declared in _RAW_LIKE and detected == "raw":
        return FormatVerdict(detected, size)
    if declared == "iso" and detected == "raw":
        # A minimal ISO may not be recognisable from its first sectors; qemu treats it as raw.
        raise BadImageFormat(f"Image content is raw, not {declared}", detected=detected)
    raise BadImageFormat(f"Image content is {detected}, not {declared}", detected=detected,
                         declared=declared)
