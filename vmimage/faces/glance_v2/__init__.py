"""The OpenStack Glance v2 face: images, data, import, tasks, metadefs, cache.

It serves every request no other face claims (/, /versions, /v2/...)."""

from __future__ import annotations

from vmimage.faces.contract import Face, FaceContext, everything
from vmimage.faces.glance_v2 import cache, data, imports, metadefs, routes, settings
from vmimage.faces.http import OpenStackErrors, caller


def _routers(context: FaceContext) -> list:
    found = [routes.router, data.router, imports.router, metadefs.router]
    if context.deps.cache is not None:   # without a cache its API does not exist (404), as in Glance
        found.append(cache.router)
    return found


FACE = Face(name="glance_v2", claims=everything, routers=_routers, errors=OpenStackErrors(), caller=caller,
            settings=settings.from_environment)
