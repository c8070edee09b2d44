"""The cloud's error tree and its one mapping to HTTP.

::

    CloudError                      500 internal_error (never raised on purpose)
    +-- BadRequest                  400 malformed_json, bad_batch, bad_cursor, ...
    +-- Unauthorized                401 unauthorized, unsigned_request, bad_signature,
    |                                   stale_request, replayed_request, unknown_store
    +-- Forbidden                   403 forbidden, store_revoked, store_mismatch,
    |                                   enrollment_code_invalid/_used/_expired
    +-- NotFound                    404 not_found, unknown_store, unknown_feed
    +-- Conflict                    409 sequence_diverged, store_exists, ...
    +-- PayloadTooLarge             413 batch_too_large
    +-- Unprocessable               422 validation_error, invalid_catalog
    +-- UpgradeRequired             426 unsupported_protocol_version
    +-- Unavailable                 503 database_unavailable (retry later; nothing applied)

Every error renders as ``{"error": {"code", "message", "details"}}``. Codes are stable: the
edge's sync client branches on them, messages are for people.
"""

from __future__ import annotations

from typing import Any


class CloudError(Exception):
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


class BadRequest(CloudError):
    status = 400
    code = "bad_request"


class Unauthorized(CloudError):
    status = 401
    code = "unauthorized"


class Forbidden(CloudError):
    status = 403
    code = "forbidden"


class NotFound(CloudError):
    status = 404
    code = "not_found"


class Conflict(CloudError):
    status = 409
    code = "conflict"


class PayloadTooLarge(CloudError):
    status = 413
    code = "payload_too_large"


class Unprocessable(CloudError):
    status = 422
    code = "validation_error"


class UpgradeRequired(CloudError):
    status = 426
    code = "unsupported_protocol_version"


class Unavailable(CloudError):
    status = 503
    code = "database_unavailable"
