"""One OS catalogue: os_version -> (platform, os_type, os_bit), after Huawei IMS's list.

The Huawei face shows these as __platform/__os_type/__os_bit, the JD face as
platform/osType, Aries as os_type; the strings are matched exactly after trimming.
An entry also has a distribution (Glance's os_distro names) and a release ("7.9", "22.04",
"2012 R2"): a distribution and release given another way (JD's platform + osVersion) name
the entry through for_release, the one mapping between the dialects' OS vocabularies.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from vmimage.core.errors import Invalid
from vmimage.core.images import Image, OsFamily

OTHER_LINUX = "Other Linux(64 bit)"
OTHER_WINDOWS = "Other Windows(64 bit)"
# The platform of an image whose os_version has none: by its os_distribution, else by family.
DISTRIBUTION_PLATFORMS = {"ubuntu": "Ubuntu", "centos": "CentOS", "windows": "Windows"}
OTHER_LINUX_PLATFORM = "Other Linux"
OTHER_WINDOWS_PLATFORM = "Other Windows"


@dataclass(frozen=True)
class OsInfo:
    os_version: str
    platform: str
    os_type: str  # Linux | Windows | Other
    os_bit: int   # 32 | 64
    release: str = ""        # the distribution's version: "7.9", "22.04", "2012 R2"
    distribution: str = ""   # Glance's os_distro name: "centos", "ubuntu", "windows"

    @property
    def family(self) -> OsFamily:
        return OsFamily.WINDOWS if self.os_type == "Windows" else OsFamily.LINUX


_BY_PLATFORM: dict[str, list[str]] = {
    "CentOS": ["CentOS 6.4 32bit", "CentOS 6.4 64bit", "CentOS 6.10 64bit", "CentOS 7.0 64bit",
               "CentOS 7.2 64bit", "CentOS 7.4 64bit", "CentOS 7.6 64bit", "CentOS 7.8 64bit",
               "CentOS 7.9 64bit", "CentOS 8.0 64bit", "CentOS 8.2 64bit"],
    "Ubuntu": ["Ubuntu 14.04 server 32bit", "Ubuntu 14.04 server 64bit", "Ubuntu 16.04 server 64bit",
               "Ubuntu 18.04 server 64bit", "Ubuntu 20.04 server 64bit", "Ubuntu 22.04 server 64bit",
               "Ubuntu 24.04 server 64bit"],
    "Debian": ["Debian GNU/Linux 8.6.0 64bit", "Debian GNU/Linux 9.0.0 64bit",
               "Debian GNU/Linux 10.0.0 64bit", "Debian GNU/Linux 11.1.0 64bit",
               "Debian GNU/Linux 12.0.0 64bit"],
    "EulerOS": ["EulerOS 2.2 64bit", "EulerOS 2.5 64bit", "EulerOS 2.8 64bit", "EulerOS 2.9 64bit"],
    "openEuler": ["openEuler 20.03 64bit", "openEuler 22.03 64bit"],
    "Fedora": ["Fedora 29 64bit", "Fedora 30 64bit"],
    "OpenSUSE": ["openSUSE 15.0 64bit", "openSUSE 15.1 64bit"],
    "Oracle Linux": ["Oracle Linux Server release 7.6 64bit", "Oracle Linux Server release 8.0 64bit"],
    "Red Hat": ["Redhat Linux Enterprise 7.5 64bit", "Redhat Linux Enterprise 8.0 64bit"],
    "SUSE": ["SUSE Linux Enterprise Server 12 SP5 64bit", "SUSE Linux Enterprise Server 15 SP1 64bit"],
    "CoreOS": ["CoreOS 1298.6.0"],
    "Windows": ["Windows Server 2012 R2 Standard 64bit", "Windows Server 2016 Standard 64bit",
                "Windows Server 2019 Standard 64bit", "Windows Server 2022 Standard 64bit",
                "Windows 10 64bit"],
    "Other": [OTHER_LINUX, OTHER_WINDOWS],
}


# A platform's distribution in Glance's os_distro vocabulary (lower case).
_DISTRIBUTIONS = {"CentOS": "centos", "Ubuntu": "ubuntu", "Debian": "debian", "EulerOS": "euleros",
                  "openEuler": "openeuler", "Fedora": "fedora", "OpenSUSE": "opensuse", "Oracle Linux": "ol",
                  "Red Hat": "rhel", "SUSE": "sles", "CoreOS": "coreos", "Windows": "windows"}
# The release in a catalogue name: the first number, with a Windows "R2" or a SUSE "SP5".
_RELEASE = re.compile(r"\d[\w.]*(?: (?:R\d|SP\d+))?")
MAX_RELEASE = 64


def _info(platform: str, version: str) -> OsInfo:
    if platform == "Other":
        os_type = "Windows" if "Windows" in version else "Linux"
    else:
        os_type = "Windows" if platform == "Windows" else "Linux"
    bit = 32 if "32bit" in version or "32 bit" in version else 64  # CoreOS has no suffix: 64
    found = _RELEASE.search(version.removesuffix("64bit").removesuffix("32bit"))
    release = found.group(0) if found and platform != "Other" else ""
    return OsInfo(version, platform, os_type, bit, release, _DISTRIBUTIONS.get(platform, ""))


CATALOGUE: dict[str, OsInfo] = {
    v: _info(p, v) for p, versions in _BY_PLATFORM.items() for v in versions
}


def lookup(os_version: str | None) -> OsInfo | None:
    if os_version is None:
        return None
    return CATALOGUE.get(os_version.strip())


def require(os_version: str) -> OsInfo:
    info = lookup(os_version)
    if info is None:
        raise Invalid(f"Unknown os_version '{os_version}'", field="os_version")
    return info


def platforms() -> dict[str, list[OsInfo]]:
    return {p: [CATALOGUE[v] for v in vs] for p, vs in _BY_PLATFORM.items()}


def platform_of(image: Image) -> str:
    """The image's platform: its os_version's in the catalogue (when one of the named
    platforms), else its os_distribution's, else Other Windows or Other Linux by its family.
    Repositories filter on it with platform_versions, CATALOGUED_VERSIONS and
    DISTRIBUTION_PLATFORMS in the same order."""
    known = CATALOGUE.get(image.os_version or "")
    if known is not None and known.platform != "Other":
        return known.platform
    if image.os_distribution in DISTRIBUTION_PLATFORMS:
        return DISTRIBUTION_PLATFORMS[image.os_distribution]
    return OTHER_WINDOWS_PLATFORM if image.os_family == OsFamily.WINDOWS else OTHER_LINUX_PLATFORM


# The os_versions that give an image its platform (those of a named platform, not "Other").
CATALOGUED_VERSIONS: tuple[str, ...] = tuple(v for v, info in CATALOGUE.items() if info.platform != "Other")


def platform_versions(platform: str) -> list[str]:
    """The os_versions whose platform this is."""
    return [v for v in CATALOGUED_VERSIONS if CATALOGUE[v].platform == platform]


def platform_distributions(platform: str) -> list[str]:
    """The os_distributions whose platform this is (for images without a catalogued os_version)."""
    return [d for d, p in DISTRIBUTION_PLATFORMS.items() if p == platform]


def for_release(distribution: str | None, release: str | None, bit: int = 64) -> OsInfo | None:
    """The catalogue entry of a distribution (an os_distro name, or a platform name in any
    case) at a release, e.g. ("Ubuntu", "22.04") -> "Ubuntu 22.04 server 64bit" (the release
    may be the entry's own name); None when the catalogue has no such entry."""
    if not distribution or not release:
        return None
    wanted = distribution.strip().lower()
    wanted = _DISTRIBUTIONS.get(next((p for p in _DISTRIBUTIONS if p.lower() == wanted), ""), wanted)
    if wanted == "windows server":
        wanted = "windows"
    named = CATALOGUE.get(release.strip())     # the catalogue's own name given as the version
    if named is not None and named.distribution == wanted:
        return named
    for info in CATALOGUE.values():
        if info.distribution == wanted and info.release == release.strip() and info.os_bit == bit:
            return info
    return None


def check_release(value: object) -> str | None:
    """A distribution release as a caller writes it: free text of 1 to MAX_RELEASE characters."""
    if value is None:
        return None
    if not isinstance(value, str) or not value.strip() or len(value) > MAX_RELEASE:
        raise Invalid(f"'os_release' must be a string of 1 to {MAX_RELEASE} characters", field="os_release")
    return value


def settle(image: Image) -> None:
    """Completes an image's OS identity from what it was given: a distribution and release
    that name a catalogue entry give its os_version; a catalogued os_version gives the family
    and distribution not given."""
    if image.os_version is None:
        info = for_release(image.os_distribution, image.os_release)
        if info is not None:
            image.os_version = info.os_version
    info = lookup(image.os_version)
    if info is not None and info.platform != "Other":
        image.os_family = image.os_family or info.family
        image.os_distribution = image.os_distribution or info.distribution


def release_of(image: Image) -> str | None:
    """The image's distribution release: as given, else its catalogue entry's."""
    if image.os_release is not None:
        return image.os_release
    info = lookup(image.os_version)
    return info.release or None if info is not None else None
