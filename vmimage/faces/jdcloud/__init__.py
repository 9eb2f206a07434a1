"""The JD Cloud dialect (VM images) under /v1/regions, signed with JD access keys."""

from __future__ import annotations

import uuid

from vmimage.faces.contract import Face, path_prefix
from vmimage.faces.jdcloud import routes, settings, transfer
from vmimage.faces.jdcloud.auth import jd_caller
from vmimage.faces.jdcloud.errors import JdErrors

FACE = Face(name="jdcloud", claims=path_prefix(routes.PREFIX), routers=lambda _context: [routes.router, transfer.router],
            errors=JdErrors(), caller=jd_caller, request_id_header="x-jdcloud-request-id",
            new_request_id=lambda: uuid.uuid4().hex, settings=settings.from_environment)
