"""Glance's image and member schemas (/v2/schemas/image, images, member, members): served by
the Glance face, and by the Huawei IMS face to signed requests (its SDK reads them too)."""

from __future__ import annotations

from typing import Any

from vmimage.core.images import CONTAINER_FORMATS, KNOWN_DISK_FORMATS, ImageStatus, MemberStatus, Visibility

_UUID = "^([0-9a-fA-F]){8}-([0-9a-fA-F]){4}-([0-9a-fA-F]){4}-([0-9a-fA-F]){4}-([0-9a-fA-F]){12}$"
_DATE = {"type": "string", "readOnly": True}


def _image_properties() -> dict[str, Any]:
    return {
        "id": {"type": "string", "description": "An identifier for the image", "pattern": _UUID},
        "name": {"type": ["null", "string"], "maxLength": 255,
                 "description": "Descriptive name for the image"},
        "status": {"type": "string", "readOnly": True, "description": "Status of the image",
                   "enum": [s.value for s in ImageStatus]},
        "visibility": {"type": "string", "enum": [v.value for v in Visibility],
                       "description": "Scope of image accessibility"},
        "protected": {"type": "boolean", "description": "If true, image will not be deletable."},
        "os_hidden": {"type": "boolean", "description": "If true, image will not appear in default image list response."},
        "checksum": {"type": ["null", "string"], "readOnly": True, "maxLength": 32,
                     "description": "md5 hash of image contents."},
        "os_hash_algo": {"type": ["null", "string"], "readOnly": True, "maxLength": 64,
                         "description": "Algorithm to calculate the os_hash_value"},
        "os_hash_value": {"type": ["null", "string"], "readOnly": True, "maxLength": 128,
                          "description": "Hexdigest of the image contents using the algorithm specified by the os_hash_algo"},
        "owner": {"type": ["null", "string"], "maxLength": 255, "description": "Owner of the image"},
        "size": {"type": ["null", "integer"], "readOnly": True,
                 "description": "Size of image file in bytes"},
        "virtual_size": {"type": ["null", "integer"], "readOnly": True,
                         "description": "Virtual size of image in bytes"},
        "container_format": {"type": ["null", "string"], "enum": [None, *CONTAINER_FORMATS],
                             "description": "Format of the container"},
        "disk_format": {"type": ["null", "string"], "enum": [None, *KNOWN_DISK_FORMATS],
                        "description": "Format of the disk"},
        "created_at": {**_DATE, "description": "Date and time of image registration"},
        "updated_at": {**_DATE, "description": "Date and time of the last image modification"},
        "tags": {"type": "array", "items": {"type": "string", "maxLength": 255},
                 "description": "List of strings related to the image"},
        "direct_url": {"type": "string", "readOnly": True,
                       "description": "URL to access the image file kept in external store"},
        "min_ram": {"type": "integer", "description": "Amount of ram (in MB) required to boot image."},
        "min_disk": {"type": "integer", "description": "Amount of disk space (in GB) required to boot image."},
        "self": {"type": "string", "readOnly": True, "description": "An image self url"},
        "file": {"type": "string", "readOnly": True, "description": "An image file url"},
        "stores": {"type": "string", "readOnly": True,
                   "description": "Store in which image data resides.  Only present when the operator has enabled multiple stores.  May be a comma-separated list of store identifiers."},
        "schema": {"type": "string", "readOnly": True, "description": "An image schema url"},
        "locations": {"type": "array", "items": {"type": "object", "properties": {
            "url": {"type": "string", "maxLength": 255}, "metadata": {"type": "object"},
            "validation_data": {"type": "object"}}, "required": ["url", "metadata"]},
            "description": "A set of URLs to access the image file kept in external store"},
        "kernel_id": {"type": ["null", "string"], "pattern": _UUID, "is_base": False,
                      "description": "ID of image stored in Glance that should be used as the kernel when booting an AMI-style image."},
        "ramdisk_id": {"type": ["null", "string"], "pattern": _UUID, "is_base": False,
                       "description": "ID of image stored in Glance that should be used as the ramdisk when booting an AMI-style image."},
        "instance_uuid": {"type": "string", "is_base": False,
                          "description": "Metadata which can be used to record which instance this image is associated with. (Informational only, does not create an instance snapshot.)"},
        "architecture": {"type": "string", "is_base": False,
                         "description": "Operating system architecture as specified in https://docs.openstack.org/python-glanceclient/latest/cli/property-keys.html"},
        "os_distro": {"type": "string", "is_base": False,
                      "description": "Common name of operating system distribution as specified in https://docs.openstack.org/python-glanceclient/latest/cli/property-keys.html"},
        "os_version": {"type": "string", "is_base": False,
                       "description": "Operating system version as specified by the distributor."},
        "description": {"type": "string", "is_base": False,
                        "description": "A human-readable string describing this image."},
        "cim_pasd_busType": {"type": "string", "is_base": False},
    }


def image_schema() -> dict[str, Any]:
    return {
        "name": "image",
        "properties": _image_properties(),
        "additionalProperties": {"type": "string"},
        "links": [{"rel": "self", "href": "{self}"}, {"rel": "enclosure", "href": "{file}"},
                  {"rel": "describedby", "href": "{schema}"}],
    }


def images_schema() -> dict[str, Any]:
    return {
        "name": "images",
        "properties": {
            "images": {"type": "array", "items": image_schema()},
            "schema": {"type": "string"}, "first": {"type": "string"}, "next": {"type": "string"},
        },
        "links": [{"rel": "first", "href": "{first}"}, {"rel": "next", "href": "{next}"},
                  {"rel": "describedby", "href": "{schema}"}],
    }


def member_schema() -> dict[str, Any]:
    return {
        "name": "member",
        "properties": {
            "created_at": {"type": "string", "description": "Date and time of image member creation"},
            "image_id": {"type": "string", "pattern": _UUID, "description": "An identifier for the image"},
            "member_id": {"type": "string", "description": "An identifier for the image member (tenantId)"},
            "status": {"type": "string", "enum": [s.value for s in MemberStatus],
                       "description": "The status of this image member"},
            "updated_at": {"type": "string", "description": "Date and time of last modification of image member"},
            "schema": {"type": "string", "readOnly": True},
        },
    }


def members_schema() -> dict[str, Any]:
    return {
        "name": "members",
        "properties": {"members": {"type": "array", "items": member_schema()},
                       "schema": {"type": "string"}},
        "links": [{"rel": "self", "href": "{self}"}, {"rel": "schema", "href": "{schema}"}],
    }


IMAGE_SCHEMAS = {"image": image_schema, "images": images_schema, "member": member_schema,
                 "members": members_schema}
