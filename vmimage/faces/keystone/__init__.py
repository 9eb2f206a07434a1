"""A Keystone v3-compatible identity face under /identity: discovery, tokens, projects."""

from __future__ import annotations

from vmimage.faces.contract import Face, path_prefix
from vmimage.faces.http import OpenStackErrors, caller
from vmimage.faces.keystone import routes, settings

FACE = Face(name="keystone", claims=path_prefix(routes.PREFIX), routers=lambda _context: [routes.router],
            errors=OpenStackErrors(), caller=caller, settings=settings.from_environment)
