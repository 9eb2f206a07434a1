"""One OS catalogue: os_version -> (platform, os_type, os_bit), after Huawei IMS's list.

The Huawei face shows these as __platform/__os_type/__os_bit, the JD face as
platform/osType, Aries as os_type; the strings are matched exactly after trimming.
"""

from __future__ import annotations

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


def _info(platform: str, version: str) -> OsInfo:
    if platform == "Other":
        os_type = "Windows" if "Windows" in version else "Linux"
    else:
        os_type = "Windows" if platform == "Windows" else "Linux"
    bit = 32 if "32bit" in version or "32 bit" in version else 64  # CoreOS has no suffix: 64
    return OsInfo(version, platform, os_type, bit)


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
