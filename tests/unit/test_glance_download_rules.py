"""glance-download's checks at the call and the properties a target takes from its source."""

from __future__ import annotations

import pytest

from vmimage.core.errors import Invalid
from vmimage.core.images import Image
from vmimage.core.services.glance_download import (RemoteSource, copied_properties, remote_source,
                                                   take_source_metadata)

UUID = "36d4b546-64a2-4bb9-bdd0-ba676aa48f2c"


def test_a_request_needs_a_region_and_a_uuid_and_defaults_to_the_public_interface():
    assert remote_source(UUID, "RegionOne", None) == RemoteSource(UUID, "RegionOne", "public")
    assert remote_source(UUID, "RegionTwo", "internal").interface == "internal"
    with pytest.raises(Invalid, match="glance_region"):
        remote_source(UUID, None, "public")
    with pytest.raises(Invalid, match="glance_image_id"):
        remote_source(None, "RegionOne", "public")
    with pytest.raises(Invalid, match="does not look like a UUID: foo"):
        remote_source("foo", "RegionOne", "public")
    with pytest.raises(Invalid):
        remote_source(UUID, ["RegionOne"], "public")


def test_the_payload_round_trips():
    source = RemoteSource(UUID, "RegionOne", "admin")
    assert RemoteSource.from_payload(source.to_payload()) == source


def test_only_the_boot_prefixes_are_copied_and_never_glance_reserved_ones():
    source = Image(id="s", owner="p", disk_format="qcow2", container_format="bare", os_distribution="ubuntu",
                   properties={"hw_cpu_cores": "5", "trait:STORAGE_DISK_SSD": "required", "os_type": "linux",
                               "os_secure_boot": "required", "speed": "88mph", "os_glance_import_task": "x",
                               "os_version": "22.04"})
    assert copied_properties(source) == {"hw_cpu_cores": "5", "trait:STORAGE_DISK_SSD": "required",
                                         "os_type": "linux", "os_secure_boot": "required", "os_distro": "ubuntu"}
    target = Image(id="t", owner="p", disk_format="iso", container_format="ovf",
                   properties={"hw_cpu_cores": "1", "mine": "kept"})
    take_source_metadata(target, source)
    assert (target.disk_format, target.container_format) == ("qcow2", "bare")
    assert target.properties["hw_cpu_cores"] == "5" and target.properties["mine"] == "kept"
    assert "speed" not in target.properties and "os_glance_import_task" not in target.properties
