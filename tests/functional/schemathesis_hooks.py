"""A check schemathesis runs beside its own: valid requests pass the store's validation.

Loaded by ``schemathesis.toml`` (``hooks``) in the fuzzing test's schemathesis process.
"""

from __future__ import annotations

from typing import Any

import schemathesis

#: Error codes that mean "this request is not what the document allows".
SHAPE_REFUSALS = frozenset(
    {
        "validation_error",
        "malformed_json",
        "bad_request",
        "bad_idempotency_key",
        "idempotency_key_required",
        "payload_too_large",
    }
)


@schemathesis.check
def documented_requests_pass_validation(ctx: Any, response: Any, case: Any) -> bool | None:
    """A request the OpenAPI document calls valid is never refused as malformed."""
    meta = case.meta
    if meta is None or not meta.generation.mode.is_positive:
        return None
    if response.status_code not in (400, 413, 422):
        return None
    try:
        code = response.json()["error"]["code"]
    except (ValueError, KeyError, TypeError):
        code = None
    if code in SHAPE_REFUSALS:
        raise AssertionError(
            f"a request the document allows was refused as malformed: {response.status_code} "
            f"{code}: {response.text[:300]}"
        )
    return None
