"""Domain errors, the only exceptions logic code raises on purpose.

Each class carries its HTTP `status` and machine-readable `code`; `functions.common.http` maps them to the JSON
error envelope in one place, so no caller ever inspects a message to decide a status.
"""

from __future__ import annotations

from typing import ClassVar


class DomainError(Exception):
    """Base class: a failure the caller can act on. `field` names the input at fault, when there is one."""

    status: ClassVar[int] = 500
    code: ClassVar[str] = "INTERNAL_ERROR"

    def __init__(self, message: str, *, field: str | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.field = field


class ValidationFailed(DomainError):
    """The request is malformed: bad JSON, wrong type, unknown or missing field, value out of range."""

    status = 400
    code = "VALIDATION_ERROR"


class Unauthorized(DomainError):
    """No valid credentials were presented."""

    status = 401
    code = "UNAUTHORIZED"


class Forbidden(DomainError):
    """Credentials are valid but do not allow this action."""

    status = 403
    code = "FORBIDDEN"


class NotFound(DomainError):
    """The addressed item does not exist (or no longer exists)."""

    status = 404
    code = "NOT_FOUND"


class Conflict(DomainError):
    """The request clashes with the current state (duplicate, version mismatch)."""

    status = 409
    code = "CONFLICT"


class Unprocessable(DomainError):
    """Well-formed input that the domain rules reject (e.g. insufficient stock)."""

    status = 422
    code = "UNPROCESSABLE"


class ServiceUnavailable(DomainError):
    """A dependency is down or throttling; the client may retry after `retry_after` seconds."""

    status = 503
    code = "SERVICE_UNAVAILABLE"

    def __init__(self, message: str, *, field: str | None = None, retry_after: int = 1) -> None:
        super().__init__(message, field=field)
        self.retry_after = retry_after
