"""The service's log lines: VMIMAGE_LOG_FORMAT=text (warnings and errors, as before) or json
(one object a line, INFO and up: one line per request, job events, warnings and errors), each
with the request id of the work it was logged in (core/log_context.py).

Whatever a line's text, secrets are taken out before it is written: a URL's query string (a
presigned URL's signature, a web-download's token), Authorization/X-Auth-Token values and
key=value pairs naming a password, secret, token or signature."""

from __future__ import annotations

import json
import logging
import re
import sys
from datetime import UTC, datetime

from vmimage.core.log_context import RequestIdFilter

FORMATS = ("text", "json")

_SECRETS = [
    (re.compile(r"(\b[a-z][a-z0-9+.-]*://[^\s?#'\"]*)\?[^\s'\"]*", re.I), r"\1?<redacted>"),
    # An Authorization header's value has spaces (scheme, then parameters): to the line's end.
    (re.compile(r"\b(authorization)(['\"]?\s*[:=,]\s*['\"]?)[^;'\"\n]+", re.I), r"\1\2<redacted>"),
    (re.compile(r"\b(x-auth-token|x-subject-token|x-amz-security-token)(['\"]?\s*[:=,]\s*['\"]?)[^\s,;'\"]+", re.I),
     r"\1\2<redacted>"),
    (re.compile(r"\b((?:[\w-]*(?:password|passwd|secret|token|signature|credential)[\w-]*|sk|ak_sk))(['\"]?\s*[:=]\s*['\"]?)[^\s,;&'\"}]+",
                re.I), r"\1\2<redacted>"),
]


def scrub(text: str) -> str:
    for pattern, replacement in _SECRETS:
        text = pattern.sub(replacement, text)
    return text


class JsonFormatter(logging.Formatter):
    """One JSON object a line: time, level, logger, request_id, message, the record's extra
    fields (a request line's), and the traceback of an exception."""

    # Attributes every LogRecord has: not extra fields.
    _PLAIN = frozenset(vars(logging.LogRecord("", 0, "", 0, "", None, None))) | {"message", "request_id"}

    def format(self, record: logging.LogRecord) -> str:
        line: dict = {"time": datetime.fromtimestamp(record.created, UTC).isoformat(timespec="milliseconds")
                      .replace("+00:00", "Z"),
                      "level": record.levelname.lower(), "logger": record.name,
                      "request_id": getattr(record, "request_id", None),
                      "message": scrub(record.getMessage())}
        line.update((key, value) for key, value in vars(record).items() if key not in self._PLAIN)
        if record.exc_info:
            line["exception"] = scrub(self.formatException(record.exc_info))
        return json.dumps(line, default=str)


class ScrubbedText(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        return scrub(super().format(record))


def configure(log_format: str) -> None:
    """The root logger's one handler (stderr) in the format asked; uvicorn's loggers
    propagate to it (serve starts uvicorn without a logging config of its own)."""
    if log_format not in FORMATS:
        raise ValueError(f"VMIMAGE_LOG_FORMAT must be one of {', '.join(FORMATS)}, not {log_format!r}")
    handler = logging.StreamHandler(sys.stderr)
    handler.addFilter(RequestIdFilter())
    if log_format == "json":
        handler.setFormatter(JsonFormatter())
        level = logging.INFO
    else:
        handler.setFormatter(ScrubbedText("%(asctime)s %(levelname)s %(name)s: %(message)s"))
        level = logging.WARNING
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level)
    # uvicorn's access log is off (the request line is ours); its lifecycle lines stay.
    logging.getLogger("uvicorn.access").disabled = True
