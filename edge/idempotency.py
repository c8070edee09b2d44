"""The ``Idempotency-Key`` a device sends with a write it may retry: what a key may be.

A retry with the same key gets the first answer. Keys are 1 to 128 visible ASCII characters
(a UUID is 36): the OpenAPI document shows the same rule, and a key outside it is refused with
422 ``bad_idempotency_key`` rather than trimmed or stored as sent.
"""

from __future__ import annotations

import re

from edge.errors import Unprocessable

KEY_PATTERN = r"^[!-~]{1,128}$"
KEY_MAX = 128
_KEY = re.compile(KEY_PATTERN)


def check_key(value: str | None, *, required: bool) -> str | None:
    """``value`` if it is a well-formed key; None when absent and not ``required``; 422 else."""
    if value is None or value == "":
        if required:
            raise Unprocessable(
                "the Idempotency-Key header is required for this request",
                code="idempotency_key_required",
                details={"header": "Idempotency-Key"},
            )
        return None
    if _KEY.fullmatch(value) is None:
        raise Unprocessable(
            f"Idempotency-Key must be 1 to {KEY_MAX} visible ASCII characters",
            code="bad_idempotency_key",
            details={"header": "Idempotency-Key"},
        )
    return value
