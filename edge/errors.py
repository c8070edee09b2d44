"""The edge's error tree and its one mapping to HTTP.

::

    AisleError                      500 internal_error (never raised on purpose)
    +-- BadRequest                  400 (malformed_json, bad_request)
    +-- Unauthorized                401 unauthorized
    +-- Forbidden                   403 forbidden
    +-- NotFound                    404 not_found, unknown_product, ...
    +-- MethodNotAllowed            405 method_not_allowed
    +-- Conflict                    409 idempotency_key_reused, cart_closed, approval_required, ...
    +-- Unprocessable               422 validation_error, invalid_barcode, ...
    +-- PaymentFailed               402 payment_declined, 504-like payment_timeout as 402 too
    +-- Busy                        503 store_busy (the write lock was not granted; retry)

Every error renders as ``{"error": {"code", "message", "details"}}``. Codes are stable: devices
branch on them, messages are for people.
"""

from __future__ import annotations

from typing import Any


class AisleError(Exception):
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


class BadRequest(AisleError):
    status = 400
    code = "bad_request"


class Unauthorized(AisleError):
    status = 401
    code = "unauthorized"


class Forbidden(AisleError):
    status = 403
    code = "forbidden"


class NotFound(AisleError):
    status = 404
    code = "not_found"


class MethodNotAllowed(AisleError):
    status = 405
    code = "method_not_allowed"


class Conflict(AisleError):
    status = 409
    code = "conflict"


class Unprocessable(AisleError):
    status = 422
    code = "validation_error"


class InvalidBarcode(Unprocessable):
    """A scanned code that is not a well-formed GTIN or store variable-measure code."""

    code = "invalid_barcode"


class PaymentFailed(AisleError):
    """The payment provider declined or did not answer; the cart stays open."""

    status = 402
    code = "payment_declined"


class ExitPassInvalid(Unprocessable):
    """An exit pass that is forged, expired, malformed or already used."""

    code = "invalid_exit_pass"


class Busy(AisleError):
    """The store could not take this write now (its write lock is held too long); retry."""

    status = 503
    code = "store_busy"
