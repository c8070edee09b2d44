"""The ``Idempotency-Key`` a caller sends with a write it may retry: 1 to 128 visible ASCII
characters, never trimmed, stored as sent. Each server keeps the first answer its own way."""

from __future__ import annotations

import re

from shared.errors import Unprocessable

KEY_PATTERN = r"^[!-~]{1,128}$"
KEY_MAX = 128
_KEY = re.compile(KEY_PATTERN)


def check_key(value: str | None, *, required: bool) -> str | None:
    """``value`` if it is a well-formed key; None when absent and not ``required``; 422 else
    (an empty header is a malformed key, not an absent one)."""
    if value is None:
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
