"""Errors the core raises. None of them knows HTTP; each face maps them in its errors.py.

    VmImageError                 code: stable, dialect-neutral identifier
    ├── NotFound                 the entity does not exist or is invisible to the caller
    ├── Gone                     the entity vanished while an operation ran on it
    ├── Conflict                 the request clashes with the current state
    │   ├── InvalidTransition    the state machine does not allow this move
    │   ├── InUse                an image, volume or snapshot something else depends on
    │   ├── Busy                 a server or disk is in the middle of another task
    │   ├── MustBeStopped        the operation needs the server stopped
    │   ├── Duplicate            an entity with this identity already exists
    │   │   └── NameTaken        the name must be unique and another entity has it
    │   └── OpaqueFormat         the image's bytes are in a format vmimage cannot read
    ├── Invalid                  a value is malformed or out of range
    │   ├── OutOfRange           a number outside its allowed range or step
    │   ├── InvalidSource        a host file to import is outside the import roots or unreadable
    │   └── BadImageFormat       image content does not match its declared format
    │       └── UnsafeImage      image content fails a safety check
    ├── Forbidden                the caller may not do this
    │   └── Protected            the entity is protected (built in) and may not be deleted
    ├── Unauthenticated          no, or no valid, credentials
    │   ├── LoginFailed          a user name and password that do not hold (counted in the metrics)
    │   └── SignatureFailed      an access-key signature that does not hold (counted in the metrics)
    ├── TooManyRequests          refused for a while (a brake); fields: retry_after (seconds)
    ├── QuotaExceeded            a per-project or per-image limit would be passed
    │   └── TooLarge             the data passes the configured size cap
    ├── BackendUnavailable       a store or other dependency cannot serve now
    ├── RequestTooLarge          a request body passes the byte cap of its kind (limit)
    └── Stalled                  the caller stopped sending a request body (idle_seconds)
"""

from __future__ import annotations


class VmImageError(Exception):
    code = "internal_error"

    def __init__(self, message: str = "", **fields: object) -> None:
        super().__init__(message or self.code)
        self.message = message or self.code
        self.fields = fields


class NotFound(VmImageError):
    code = "not_found"


class Gone(VmImageError):
    code = "gone"


class Conflict(VmImageError):
    code = "conflict"


class InvalidTransition(Conflict):
    code = "invalid_transition"

    def __init__(self, entity: str, current: str, target: str) -> None:
        super().__init__(f"{entity} cannot go from '{current}' to '{target}'",
                         current=current, target=target)


class InUse(Conflict):
    code = "in_use"


class Busy(Conflict):
    code = "busy"


class MustBeStopped(Conflict):
    code = "must_be_stopped"


class Duplicate(Conflict):
    code = "duplicate"


class NameTaken(Duplicate):
    code = "name_taken"


class OpaqueFormat(Conflict):
    code = "opaque_format"


class Invalid(VmImageError):
    code = "invalid"


class OutOfRange(Invalid):
    code = "out_of_range"


class InvalidSource(Invalid):
    code = "invalid_source"


class BadImageFormat(Invalid):
    code = "bad_image_format"


class UnsafeImage(BadImageFormat):
    code = "unsafe_image"


class InspectionFailed(Conflict):
    """An image's contents could not be read (core/insight.py); the image stays usable. Ends
    an inspection job; a face sees it only as a job's failure."""
    code = "inspection_failed"


class Forbidden(VmImageError):
    code = "forbidden"


class Protected(Forbidden):
    code = "protected"


class Unauthenticated(VmImageError):
    code = "unauthenticated"


class LoginFailed(Unauthenticated):
    """A user name and password that do not hold: answered as any Unauthenticated, counted
    apart (vmimage_login_failures_total)."""


class SignatureFailed(Unauthenticated):
    """A signed request whose signature, key or signed parts do not hold: answered as any
    Unauthenticated, counted apart (vmimage_signature_failures_total)."""


class QuotaExceeded(VmImageError):
    code = "quota_exceeded"


class TooLarge(QuotaExceeded):
    code = "too_large"


class BackendUnavailable(VmImageError):
    code = "backend_unavailable"


class TooManyRequests(VmImageError):
    """Refused for now; retry_after (a field) says in how many seconds to try again."""
    code = "too_many_requests"


class RequestTooLarge(VmImageError):
    code = "request_too_large"


class Stalled(VmImageError):
    code = "stalled"
