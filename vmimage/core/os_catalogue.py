"""One OS catalogue: os_version -> (platform, os_type, os_bit), after Huawei IMS's list.

The Huawei face shows these as __platform/__os_type/__os_bit, the JD face as
platform/osType, Aries as os_type; the strings are matched exactly after trimming.
"""

from __future__ import annotations

from dataclasses import dataclass

from vmimage.core.errors import Invalid

OTHER_LINUX = "Other Linux(64 bit)"
OTHER_WINDOWS = "Other Windows(64 bit)"


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
