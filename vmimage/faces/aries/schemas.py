"""Aries request bodies as typed models (bounds in faces/bodies.py); the dialect's extra keys
(the CLI's version and size, networks, ipv4_address...) are accepted and ignored."""

from __future__ import annotations

from typing import Annotated, Any

from pydantic import Field

from vmimage.faces.bodies import Body, Bool, Ident, Int63, Name, Path, Text


class CreateImage(Body):
    name: Name | None = None
    os_type: Name | None = None
    os_name: Name | None = None
    description: Text | None = None
    uuid: Ident | None = None
    source_path: Path | None = None


class UpdateImage(Body):
    id: Any = None              # a positive integer, or its decimal string (checked in translate)
    name: Name | None = None
    os_type: Name | None = None
    os_name: Name | None = None
    description: Text | None = None


class Compute(Body):
    cpu_core_count: Int63 | None = None
    memory_size: Int63 | None = None


class ServerVolume(Body):
    type: Int63 | None = None
    size: Int63 | None = None
    image_ref: Ident | None = None


class Storage(Body):
    volumes: Annotated[list[ServerVolume], Field(max_length=26)] | None = None


class Option(Body):
    boot_when_created: Bool | None = None


class CreateServer(Body):
    name: Name | None = None
    compute: Compute | None = None
    storage: Storage | None = None
    option: Option | None = None


class CreateVolume(Body):
    name: Name | None = None
    type: Int63 | None = None
    size: Int63 | None = None
