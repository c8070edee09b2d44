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
    +-- CloudUnavailable            503 cloud_unavailable (what only the cloud knows, offline)

Every error renders as ``{"error": {"code", "message", "details"}}``. Codes are stable: devices
branch on them, messages are for people. The base and the common refusals are the shared
kernel's (:mod:`shared.errors`); this module adds the store's own.
"""

from __future__ import annotations

from shared.errors import ApiError as AisleError
from shared.errors import BadRequest, Conflict, Forbidden, NotFound, Unauthorized, Unprocessable

__all__ = [
    "AisleError",
    "BadRequest",
    "Busy",
    "CloudUnavailable",
    "Conflict",
    "ExitPassInvalid",
    "Forbidden",
    "InvalidBarcode",
    "MethodNotAllowed",
    "NotFound",
    "PaymentFailed",
    "Unauthorized",
    "Unprocessable",
]


class MethodNotAllowed(AisleError):
    status = 405
    code = "method_not_allowed"


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


class CloudUnavailable(AisleError):
    """What was asked only the cloud knows, and it did not answer in time; ``details`` carries
    what the store knows itself."""

    status = 503
    code = "cloud_unavailable"
