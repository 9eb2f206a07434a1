"""The default metadata definitions catalogue shipped with vmimage.

resource_types.json lists the resource types every deployment knows; each other file is one
namespace in the same shape as the body of POST /v2/metadefs/namespaces.
"""

from __future__ import annotations

import json
from importlib import resources

from vmimage.core.metadefs import NamespaceSpec, namespace_spec

_RESOURCE_TYPES = "resource_types.json"


def _files():
    return sorted((f for f in resources.files(__name__).iterdir() if f.name.endswith(".json")),
                  key=lambda f: f.name)


def resource_types() -> list[str]:
    return list(json.loads(resources.files(__name__).joinpath(_RESOURCE_TYPES).read_text("utf-8"))
                ["resource_types"])


def namespaces() -> list[NamespaceSpec]:
    """Every namespace of the catalogue, validated as an API request would be."""
    return [namespace_spec(json.loads(f.read_text("utf-8"))) for f in _files() if f.name != _RESOURCE_TYPES]
