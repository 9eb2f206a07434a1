"""The Aries dialect under /aries/api/v1: images, servers, volumes."""

from __future__ import annotations

from vmimage.faces.aries import inventory, routes
from vmimage.faces.aries.auth import aries_caller
from vmimage.faces.aries.errors import AriesErrors
from vmimage.faces.contract import Face, path_prefix

FACE = Face(name="aries", claims=path_prefix(routes.PREFIX), routers=lambda _context: [routes.router, inventory.router],
            errors=AriesErrors(routes.PREFIX), caller=aries_caller)
