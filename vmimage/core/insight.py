"""Image insight: what is inside an image, read without booting it, and what follows from it.

The reader (a port, imaging/insight_reader.py) returns raw facts: partitions, filesystems and
what the root filesystem holds. Here, once for every face: the report (OS identity and the
checks, each pass | warn | fail with a reason a person understands), and the image attributes
it fills, only those the user left unset; a declared value that disagrees with what was found
stays, and the disagreement is a check result.
"""

from __future__ import annotations

import re
import shlex
from dataclasses import dataclass
from typing import Any

from vmimage.core import os_catalogue
from vmimage.core.images import BootMode, Image, OsFamily
from vmimage.core.jobs import INSPECT_KIND  # noqa: F401  (the job kind, named here too)

# The image attributes an inspection may fill (when unset), in the core's names.
FILLABLE = ("os_distribution", "os_release", "os_version", "os_family", "architecture", "boot_mode")

PASS, WARN, FAIL = "pass", "warn", "fail"
LOW_FREE_BYTES = 256 << 20
LOW_FREE_FRACTION = 0.05

# os-release IDs whose os_distro name (Glance's vocabulary, lower case, one word) differs.
_DISTROS = {"opensuse-leap": "opensuse", "opensuse-tumbleweed": "opensuse", "sled": "sles",
            "redhat": "rhel", "almalinux": "almalinux", "rocky": "rocky", "ol": "ol"}
# Where the distribution's release is finer than os-release's VERSION_ID ("7" -> "7.9").
_REDHAT_RELEASE = re.compile(r"release (\d+(?:\.\d+)?)")


@dataclass(frozen=True)
class Detected:
    distribution: str | None
    release: str | None
    pretty_name: str | None
    family: OsFamily | None
    architecture: str | None
    boot_mode: BootMode | None
    os_version: str | None       # the catalogue entry (core/os_catalogue.py)


def parse_os_release(text: str | None) -> dict[str, str]:
    values: dict[str, str] = {}
    for line in (text or "").splitlines():
        key, sep, raw = line.strip().partition("=")
        if not sep or not key or key.startswith("#"):
            continue
        try:
            parts = shlex.split(raw)
        except ValueError:
            parts = [raw.strip("\"'")]
        values[key] = parts[0] if parts else ""
    return values


def catalogue_entry(distribution: str | None, release: str | None, bit: int) -> str | None:
    """The catalogue's name for a distribution at a release; "12" also names "12.0.0"."""
    info = os_catalogue.for_release(distribution, release, bit)
    if info is None and distribution and release:
        for candidate in os_catalogue.CATALOGUE.values():
            if (candidate.distribution == distribution and candidate.os_bit == bit
                    and re.fullmatch(re.escape(release) + r"(\.0)*", candidate.release)):
                info = candidate
                break
    if info is not None:
        return info.os_version
    return None


def detect(facts: dict[str, Any]) -> Detected:
    root = facts.get("root") or {}
    release_info = parse_os_release(root.get("os_release"))
    os_id = release_info.get("ID", "").strip().lower() or None
    release = release_info.get("VERSION_ID") or None
    if os_id is None and root.get("alpine_release"):
        os_id, release = "alpine", root["alpine_release"].strip()
    redhat = root.get("redhat_release") or ""
    if os_id is None and redhat:
        os_id = "centos" if "CentOS" in redhat else "rhel" if "Red Hat" in redhat else None
    if os_id in ("centos", "rhel") and redhat:
        finer = _REDHAT_RELEASE.search(redhat)
        if finer and (not release or finer.group(1).split(".")[0] == release.split(".")[0]):
            release = finer.group(1)
    if os_id == "debian" and root.get("debian_version") and not release:
        release = root["debian_version"].strip()
    distribution = _DISTROS.get(os_id, os_id) if os_id else None
    if distribution is not None:
        distribution = re.sub(r"[^a-z0-9]", "", distribution) or None
    family = OsFamily.LINUX if root else None
    architecture = root.get("architecture")
    bit = 32 if architecture in ("i686", "armv7l") else 64
    os_version = catalogue_entry(distribution, release, bit)
    if os_version is None and family == OsFamily.LINUX and bit == 64:
        os_version = os_catalogue.OTHER_LINUX
    return Detected(distribution, release, release_info.get("PRETTY_NAME"), family, architecture,
                    boot_mode(facts), os_version)


def boot_mode(facts: dict[str, Any]) -> BootMode | None:
    parts = facts.get("partitions") or []
    if not facts.get("root"):
        return None
    esp = any(p.get("esp") for p in parts)
    bios = any(p.get("bios_boot") for p in parts) or facts.get("partition_table") == "mbr" and facts.get(
        "mbr_boot_code")
    if esp and not bios:
        return BootMode.UEFI
    return BootMode.BIOS


# --- the checks -------------------------------------------------------------------------------

def _check(name: str, result: str, reason: str) -> dict[str, str]:
    return {"name": name, "result": result, "reason": reason}


def check_virtio(root: dict[str, Any]) -> dict[str, str]:
    kernels = root.get("kernels") or []
    if not kernels:
        return _check("virtio_drivers", WARN, "No kernel modules directory (/lib/modules) found: the virtio "
                                              "block and network drivers cannot be confirmed")
    lacking = []
    for kernel in kernels:
        missing = [d for d, how in kernel["drivers"].items() if how is None]
        if missing:
            lacking.append(f"{kernel['version']} lacks {', '.join(missing)}")
    if len(lacking) == len(kernels):
        return _check("virtio_drivers", FAIL, "No kernel has both virtio drivers (" + "; ".join(lacking)
                      + "): the image will not find its disk or network on KVM")
    found = "; ".join(f"{k['version']}: " + ", ".join(f"{d} {how}" for d, how in k["drivers"].items() if how)
                      for k in kernels)
    if lacking:
        return _check("virtio_drivers", WARN, "Some kernels lack virtio drivers (" + "; ".join(lacking) + f"); {found}")
    return _check("virtio_drivers", PASS, f"virtio block and network drivers present ({found})")


def check_boot_loader(facts: dict[str, Any], mode: BootMode | None) -> dict[str, str]:
    present = (facts.get("root") or {}).get("present") or {}
    parts = facts.get("partitions") or []
    grub = present.get("/boot/grub/grub.cfg") or present.get("/boot/grub2/grub.cfg")
    other = next((p for p in ("/boot/extlinux/extlinux.conf", "/boot/syslinux/syslinux.cfg", "/boot/loader/entries")
                  if present.get(p)), None)
    loader = "GRUB (/boot/grub/grub.cfg)" if grub else other
    if loader is None:
        return _check("boot_loader", FAIL, "No boot loader configuration found (GRUB, extlinux, "
                                           "systemd-boot): the image will not boot as a system disk")
    if mode == BootMode.UEFI:
        return _check("boot_loader", PASS, f"{loader} with an EFI system partition for UEFI boot")
    if facts.get("partition_table") == "gpt":
        if any(p.get("bios_boot") for p in parts):
            return _check("boot_loader", PASS, f"{loader} with a BIOS boot partition for BIOS boot")
        return _check("boot_loader", WARN, f"{loader} found, but a GPT disk without a BIOS boot partition "
                                           "cannot hold GRUB's core image for BIOS boot")
    if facts.get("mbr_boot_code"):
        return _check("boot_loader", PASS, f"{loader} with boot code in the MBR for BIOS boot")
    return _check("boot_loader", WARN, f"{loader} found, but the MBR holds no boot code")


_FSTAB_SKIP = ("proc", "sysfs", "tmpfs", "devpts", "none", "devtmpfs", "cgroup", "cgroup2", "securityfs")


def check_fstab(facts: dict[str, Any]) -> dict[str, str]:
    root = facts.get("root") or {}
    text = root.get("fstab")
    if text is None:
        return _check("fstab", WARN, "No /etc/fstab: filesystems beyond the root are not mounted at boot")
    if "\x00" in text:
        return _check("fstab", WARN, "/etc/fstab is not a text file")
    parts = facts.get("partitions") or []
    uuids = {str(p.get("uuid", "")).lower() for p in parts if p.get("uuid")}
    labels = {p.get("label") for p in parts if p.get("label")}
    partuuids = {str(p.get("partuuid", "")).lower() for p in parts if p.get("partuuid")}
    unresolved, device_names, entries = [], [], 0
    for line in text.splitlines():
        fields = line.split()
        if not fields or fields[0].startswith("#") or len(fields) < 2:
            continue
        spec, fs_type = fields[0], fields[2] if len(fields) > 2 else ""
        if fs_type in _FSTAB_SKIP or spec in _FSTAB_SKIP:
            continue
        entries += 1
        optional = len(fields) > 3 and "nofail" in fields[3].split(",")
        if spec.startswith("/dev/disk/by-uuid/"):
            spec = "UUID=" + spec.rsplit("/", 1)[1]
        elif spec.startswith("/dev/disk/by-label/"):
            spec = "LABEL=" + spec.rsplit("/", 1)[1]
        key, _, value = spec.partition("=")
        value = value.strip("\"'")
        if key == "UUID" and value.lower() not in uuids or key == "LABEL" and value not in labels \
                or key == "PARTUUID" and value.lower() not in partuuids:
            if not optional:
                unresolved.append(f"{fields[0]} ({fields[1]})")
        elif re.fullmatch(r"/dev/(sd|hd|xvd)[a-z]+\d*", spec):
            device_names.append(f"{spec} ({fields[1]})")
    if unresolved:
        return _check("fstab", FAIL, "/etc/fstab names filesystems not on this disk: " + ", ".join(unresolved))
    if device_names:
        return _check("fstab", WARN, "/etc/fstab uses device names that change on KVM's virtio disks (vdX): "
                      + ", ".join(device_names) + "; use UUID= or LABEL=")
    return _check("fstab", PASS, f"{entries} /etc/fstab entries, all found on this disk")


def check_present(root: dict[str, Any], name: str, paths: tuple[str, ...], what: str, missing: str) -> dict[str, str]:
    present = root.get("present") or {}
    found = [p for p in paths if present.get(p)]
    if found:
        return _check(name, PASS, f"{what} found ({found[0]})")
    return _check(name, WARN, missing)


def check_free_space(root: dict[str, Any]) -> dict[str, str]:
    free, total = root.get("free_bytes"), root.get("total_bytes")
    if not total or free is None:
        return _check("root_free_space", WARN, "The root filesystem's free space is not known")
    text = f"{free >> 20} MiB free of {total >> 20} MiB on the root filesystem"
    if free < LOW_FREE_BYTES or free < total * LOW_FREE_FRACTION:
        return _check("root_free_space", WARN, text + ": little room for first-boot work (logs, package updates)")
    return _check("root_free_space", PASS, text)


def check_partitions(facts: dict[str, Any]) -> dict[str, str]:
    beyond = [p for p in facts.get("partitions") or [] if p.get("beyond_disk")]
    if beyond:
        return _check("partitions_within_disk", FAIL, "Partitions " + ", ".join(str(p["number"]) for p in beyond)
                      + f" end past the disk's virtual size ({facts.get('virtual_size')} bytes)")
    count = len([p for p in facts.get("partitions") or [] if not p.get("whole_disk") and not p.get("logical_volume")])
    return _check("partitions_within_disk", PASS, f"{count} partitions ({facts.get('partition_table')}), all "
                                                  "within the virtual size")


def compare_declared(declared: dict[str, Any], found: Detected) -> tuple[dict[str, str], list[dict[str, Any]]]:
    """The check of what the user declared against what was found, and the differences."""
    detected = {"os_distribution": found.distribution, "os_release": found.release, "os_family": found.family,
                "architecture": found.architecture, "boot_mode": found.boot_mode}
    differences = []
    for key, value in declared.items():
        if value is None:
            continue
        seen = detected.get(key)
        if key == "os_version":
            info = os_catalogue.lookup(value)
            if info is not None and info.platform != "Other" and found.distribution is not None \
                    and info.distribution != found.distribution:
                differences.append({"field": key, "declared": value, "detected": found.os_version})
            elif info is not None and found.release and info.release and \
                    info.release.split(".")[0] != found.release.split(".")[0] and info.distribution == found.distribution:
                differences.append({"field": key, "declared": value, "detected": found.os_version})
            continue
        if seen is None:
            continue
        same = str(value).lower() == str(seen).lower()
        if key == "os_release":
            same = str(value).split(".")[0] == str(seen).split(".")[0]
        if key == "architecture":
            same = _arch(str(value)) == _arch(str(seen))
        if not same:
            differences.append({"field": key, "declared": str(value), "detected": str(seen)})
    if differences:
        text = "; ".join(f"{d['field']} declared {d['declared']!r}, found {d['detected']!r}" for d in differences)
        return _check("declared_os", WARN, f"What was declared differs from what is inside: {text}"), differences
    if not any(v is not None for v in declared.values()):
        return _check("declared_os", PASS, "Nothing was declared; what was found fills the image's OS fields"), []
    return _check("declared_os", PASS, "What was declared agrees with what is inside"), []


def _arch(value: str) -> str:
    return {"x86": "x86_64", "amd64": "x86_64", "arm": "aarch64", "arm64": "aarch64"}.get(value.lower(), value.lower())


# --- the report and the fill ------------------------------------------------------------------

def declared_of(image: Image) -> dict[str, Any]:
    """The image's OS attributes its user set (those a past inspection filled are not theirs)."""
    filled = set((image.insight or {}).get("filled") or [])
    return {key: _plain(getattr(image, key)) for key in FILLABLE if key not in filled}


def _plain(value: Any) -> Any:
    return value.value if hasattr(value, "value") else value


def make_report(facts: dict[str, Any], declared: dict[str, Any]) -> dict[str, Any]:
    """The report of a reading, or None-free failure when there was nothing to read."""
    found = detect(facts)
    root = facts.get("root") or {}
    checks = [check_partitions(facts)]
    if root:
        checks += [check_virtio(root), check_boot_loader(facts, found.boot_mode), check_fstab(facts),
                   check_present(root, "cloud_init", ("/usr/bin/cloud-init", "/etc/cloud/cloud.cfg"), "cloud-init",
                                 "Neither cloud-init nor cloudbase-init found: keys, passwords and user data "
                                 "will not be applied at first boot"),
                   check_present(root, "ssh_server", ("/usr/sbin/sshd", "/usr/sbin/dropbear"), "An SSH server",
                                 "No SSH server (sshd, dropbear) found: the server cannot be reached over SSH"),
                   check_free_space(root)]
    declared_check, mismatches = compare_declared(declared, found)
    checks.append(declared_check)
    kernels = [k["version"] for k in root.get("kernels") or []] or [
        f.removeprefix("vmlinuz-") for f in root.get("boot_files") or []]
    hostname = (root.get("hostname") or "").strip().splitlines()
    return {
        "os": {"family": _plain(found.family), "distribution": found.distribution, "version": found.release,
               "pretty_name": found.pretty_name, "architecture": found.architecture, "kernels": kernels,
               "boot_mode": _plain(found.boot_mode), "hostname": hostname[0] if hostname else None,
               "os_version": found.os_version},
        "checks": checks,
        "declared": {k: v for k, v in declared.items() if v is not None},
        "mismatches": mismatches,
        "partition_table": facts.get("partition_table"),
        "partitions": [{k: p.get(k) for k in ("number", "start", "size", "type", "uuid", "label", "esp", "bios_boot",
                                               "logical_volume", "root", "error") if p.get(k) not in (None, False)}
                       for p in facts.get("partitions") or []],
        "read_errors": list(facts.get("errors") or [])[:20],
        "bytes_read": facts.get("bytes_read"),
        # where no local file holds the data: the store read by ranges, and the bytes fetched
        # from it (whole aligned blocks, so a little more than bytes_read)
        "read_from": facts.get("read_from", "file"),
        "bytes_fetched": facts.get("bytes_fetched"),
    }


def fill(image: Image, report: dict[str, Any]) -> list[str]:
    """Set the OS attributes the user left unset from the report; what was set by a past
    inspection is replaced. Returns the attributes filled."""
    previously = set((image.insight or {}).get("filled") or [])
    os_ = report["os"]
    values: dict[str, Any] = {
        "os_distribution": os_["distribution"], "os_release": os_["version"], "os_version": os_["os_version"],
        "os_family": OsFamily(os_["family"]) if os_["family"] else None, "architecture": os_["architecture"],
        "boot_mode": BootMode(os_["boot_mode"]) if os_["boot_mode"] else None,
    }
    filled = []
    for key in FILLABLE:
        if getattr(image, key) is not None and key not in previously:
            continue        # the user's: never overwritten
        setattr(image, key, values[key])
        if values[key] is not None:
            filled.append(key)
    return filled


def failed_reason(reason: str) -> str:
    return reason if reason.startswith("inspection failed: ") else f"inspection failed: {reason}"


def cloud_init_found(image: Image) -> bool | None:
    """Whether the last reading found cloud-init (None: no reading)."""
    return _check_result(image, "cloud_init")


def kvm_ready(image: Image) -> bool | None:
    """Whether the last reading found the virtio drivers KVM needs (None: no reading)."""
    return _check_result(image, "virtio_drivers")


def _check_result(image: Image, name: str) -> bool | None:
    report = (image.insight or {}).get("report")
    if not report:
        return None
    for check in report.get("checks") or []:
        if check["name"] == name:
            return check["result"] == PASS
    return None
