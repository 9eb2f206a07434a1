"""The web console at /console/: static assets (plain JS modules) that talk to the other
faces' APIs (Keystone, Glance v2, native) from the browser, with the caller's own token."""

from __future__ import annotations

from vmimage.faces.console import routes
from vmimage.faces.console.errors import ConsoleErrors
from vmimage.faces.contract import Face, path_prefix
from vmimage.faces.http import caller

# The console's files need no caller: every request they make goes to an API with its token.
FACE = Face(name="console", claims=path_prefix(routes.PREFIX), routers=lambda _context: [routes.router],
            errors=ConsoleErrors(), caller=caller)
