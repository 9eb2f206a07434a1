"""The Huawei Cloud IMS dialect: requests signed with SDK-HMAC-SHA256 (any path, /v2/images
included), and IMS's own paths even unsigned (so they are refused in IMS's envelope)."""

from __future__ import annotations

import re
import uuid

from starlette.requests import HTTPConnection

from vmimage.faces.contract import Face
from vmimage.faces.huawei_ims import glance, routes, signature, tags
from vmimage.faces.huawei_ims.auth import ims_caller
from vmimage.faces.huawei_ims.errors import ImsErrors

_IMS_PATHS = re.compile(r"^/(v1|v2|v2\.1)/cloudimages(/|$)|^/v1/[^/]+/jobs/|^/v1/[^/]+/cloudimages/"
                        r"|^/v2/[^/]+/images/")


def claims(conn: HTTPConnection) -> bool:
    return signature.is_signed(conn.headers) or bool(_IMS_PATHS.match(conn.scope["path"]))


FACE = Face(name="huawei_ims", claims=claims, routers=lambda _context: [glance.router, tags.router, routes.router],
            errors=ImsErrors(), caller=ims_caller, request_id_header="X-Request-Id",
            new_request_id=lambda: uuid.uuid4().hex)
