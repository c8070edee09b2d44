"""The one error shape both servers answer with, and the refusals they have in common.

::

    ApiError                        500 internal_error (never raised on purpose)
    +-- BadRequest                  400 bad_request, malformed_json, ...
    +-- Unauthorized                401 unauthorized, ...
    +-- Forbidden                   403 forbidden, ...
    +-- NotFound                    404 not_found, ...
    +-- Conflict                    409 conflict, ...
    +-- Unprocessable               422 validation_error, ...

Every error renders as ``{"error": {"code", "message", "details"}}``. Codes are stable: clients
branch on them, messages are for people. Each side adds its own classes (``edge.errors``,
``cloud.errors``) under the same base, so one handler renders them all.
"""

from __future__ import annotations

from typing import Any


class ApiError(Exception):
    """Base of every domain error; carries a stable code, a message and details."""

    status = 500
    code = "internal_error"

    def __init__(
        self, message: str, *, code: str | None = None, details: dict[str, Any] | None = None
    ) -> None:
        super().__init__(message)
        self.message = message
        if code is not None:
            self.code = code
        self.details: dict[str, Any] = details or {}

    def to_dict(self) -> dict[str, Any]:
        """The wire shape of this error."""
        return {"error": {"code": self.code, "message": self.message, "details": self.details}}


class BadRequest(ApiError):
    status = 400
    code = "bad_request"


class Unauthorized(ApiError):
    status = 401
    code = "unauthorized"


class Forbidden(ApiError):
    status = 403
    code = "forbidden"


class NotFound(ApiError):
    status = 404
    code = "not_found"


class Conflict(ApiError):
    status = 409
    code = "conflict"


class Unprocessable(ApiError):
    status = 422
    code = "validation_error"


#: The wire shape of every error, as JSON Schema (for the OpenAPI documents).
ERROR_SCHEMA: dict[str, Any] = {
    "type": "object",
    "required": ["error"],
    "properties": {
        "error": {
            "type": "object",
            "required": ["code", "message", "details"],
            "properties": {
                "code": {"type": "string"},
                "message": {"type": "string"},
                "details": {"type": "object"},
            },
        }
    },
}
