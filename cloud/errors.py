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
edge's sync client branches on them, messages are for people. The base and the common refusals
are the shared kernel's (:mod:`shared.errors`); this module adds the cloud's own.
"""

from __future__ import annotations

from shared.errors import ApiError as CloudError
from shared.errors import BadRequest, Conflict, Forbidden, NotFound, Unauthorized, Unprocessable

__all__ = [
    "BadRequest",
    "CloudError",
    "Conflict",
    "Forbidden",
    "NotFound",
    "PayloadTooLarge",
    "Unauthorized",
    "Unavailable",
    "Unprocessable",
    "UpgradeRequired",
]


class PayloadTooLarge(CloudError):
    status = 413
    code = "payload_too_large"


class UpgradeRequired(CloudError):
    status = 426
    code = "unsupported_protocol_version"


class Unavailable(CloudError):
    status = 503
    code = "database_unavailable"
