"""The log formatter: JSON lines with the request id, secrets scrubbed; which client request
ids are kept."""

from __future__ import annotations

import json
import logging

from vmimage.core.log_context import RequestIdFilter, enter_request, leave_request
from vmimage.faces.http import client_request_id
from vmimage.logs import JsonFormatter, scrub


def test_scrub_takes_out_queries_credentials_and_named_secrets():
    text = scrub("GET https://s3.example/b/k?X-Amz-Signature=abc123&X-Amz-Credential=AK failed; "
                 "Authorization: SDK-HMAC-SHA256 Access=AK, Signature=deadbeef; password=hunter2 "
                 "secret_key: 'S3CR3T' x-auth-token=gAAAA-token disk_format=raw task=import")
    for secret in ("abc123", "deadbeef", "hunter2", "S3CR3T", "gAAAA-token"):
        assert secret not in text, text
    assert "https://s3.example/b/k?<redacted>" in text
    assert "disk_format=raw" in text and "task=import" in text    # not everything is a secret


def test_json_line_carries_the_request_id_extra_fields_and_a_scrubbed_traceback():
    record = logging.LogRecord("vmimage.jobs", logging.WARNING, __file__, 1, "fetch of %s failed",
                               ("http://h/x?token=T0KEN",), None)
    record.job_id = "j1"
    context, token = enter_request("req-1")
    try:
        RequestIdFilter().filter(record)
    finally:
        leave_request(token)
    try:
        raise RuntimeError("http://h/x?sig=S1G")
    except RuntimeError:
        import sys
        record.exc_info = sys.exc_info()
    line = json.loads(JsonFormatter().format(record))
    assert line["request_id"] == "req-1" and line["level"] == "warning" and line["job_id"] == "j1"
    assert "T0KEN" not in line["message"] and "S1G" not in line["exception"]
    assert context.request_id == "req-1"


def test_a_client_request_id_is_kept_only_when_plain_and_of_a_sane_length():
    def sent(value: bytes) -> str | None:
        return client_request_id({"headers": [(b"x-request-id", value)]}, b"x-request-id")

    assert sent(b"req-3f2a9c1e-0000-4000-8000-000000000000") == "req-3f2a9c1e-0000-4000-8000-000000000000"
    assert sent(b"abc:def_1.2") == "abc:def_1.2"
    for bad in (b"short", b"x" * 129, b"with space 1234", b"quote\"1234567", b"line\nbreak1234", "\u00e9t\u00e9-12345".encode()):
        assert sent(bad) is None, bad
    assert client_request_id({"headers": []}, b"x-request-id") is None
