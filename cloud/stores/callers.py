"""The callers this feature knows: HQ and the other channels by their bearer tokens, and the
protocol version a store speaks (checked for enrollment and for every signed request)."""

from __future__ import annotations

import threading
import time
from collections.abc import Collection
from dataclasses import dataclass

from cloud.errors import UpgradeRequired
from cloud.stores.service import authenticate_token
from cloud.web import ctx
from shared.screens import request_token
from shared.web import bearer_token
from sync.protocol import ERR_VERSION


def check_version(version: int, accepted: Collection[int]) -> None:
    """426 ``unsupported_protocol_version`` for a version this cloud does not accept."""
    if version not in accepted:
        raise UpgradeRequired(
            f"protocol version {version} is not supported; this cloud accepts "
            f"{', '.join(str(v) for v in sorted(accepted))}",
            code=ERR_VERSION,
            details={"accepted": sorted(accepted), "current": max(accepted, default=0)},
        )


@dataclass(frozen=True)
class TokenHolder:
    """Who holds a request's token: the token's id and name (a channel's name)."""

    token_id: str
    name: str


#: Tokens this worker checked lately: (token, role) -> (holder, time.monotonic() it lapses).
_checked: dict[tuple[str, str], tuple[TokenHolder, float]] = {}
_checked_lock = threading.Lock()
#: Tokens remembered at most (an attacker's made-up tokens are never remembered: only good ones).
_CHECKED_MAX = 1_000


def token_holder(role: str) -> TokenHolder:
    """The holder of this request's ``role`` token; 401/403 otherwise. A token found good is
    trusted for ``server.token_cache_s`` without reading the database again: HQ's busiest
    reads (a member lookup) then cost one statement, not two transactions."""
    # HQ's pages send the token in their cookie (and a CSRF token on writes); the channels'
    # servers only ever send the header.
    token = request_token() if role == "hq" else bearer_token()
    ttl = ctx().settings.server.token_cache_s
    now = time.monotonic()
    if token is not None and ttl > 0:
        cached = _checked.get((token, role))
        if cached is not None and cached[1] > now:
            return cached[0]
    with ctx().db.read() as session:
        row = authenticate_token(session, token, role=role)
        holder = TokenHolder(token_id=row.id, name=row.name)
    if token is not None and ttl > 0:
        with _checked_lock:
            if len(_checked) >= _CHECKED_MAX:
                _checked.clear()
            _checked[(token, role)] = (holder, now + ttl)
    return holder


def hq_caller() -> TokenHolder:
    """The HQ token of this request; 401/403 otherwise."""
    return token_holder("hq")


def channel_caller() -> TokenHolder:
    """The channel whose token this request carries (an online shop, a mini-program); 401/403
    otherwise."""
    return token_holder("channel")
