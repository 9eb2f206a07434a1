"""vmimage's native API under /vmimage/v1: servers, volumes, snapshots, images from them, jobs,
buckets, and administration (admins only)."""

from __future__ import annotations

from vmimage.faces.contract import Face, path_prefix
from vmimage.faces.http import caller
from vmimage.faces.native import admin, buckets, routes
from vmimage.faces.native.errors import NativeErrors

FACE = Face(name="native", claims=path_prefix(routes.PREFIX),
            routers=lambda _context: [routes.router, buckets.router, admin.router],
            errors=NativeErrors(), caller=caller)
