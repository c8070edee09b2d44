"""The callers this feature knows: HQ and the other channels by their bearer tokens, and the
protocol version a store speaks (checked for enrollment and for every signed request)."""

from __future__ import annotations

from collections.abc import Collection
from dataclasses import dataclass

from cloud.errors import UpgradeRequired
from cloud.stores.models import ApiToken
from cloud.stores.service import authenticate_token
from cloud.web import ctx
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


def hq_caller() -> ApiToken:
    """The HQ token of this request; 401/403 otherwise."""
    with ctx().db.read() as session:
        return authenticate_token(session, bearer_token(), role="hq")


@dataclass(frozen=True)
class TokenHolder:
    """Who holds a request's token: the token's id and name (a channel's name)."""

    token_id: str
    name: str


def channel_caller() -> TokenHolder:
    """The channel whose token this request carries (an online shop, a mini-program); 401/403
    otherwise."""
    with ctx().db.read() as session:
        token = authenticate_token(session, bearer_token(), role="channel")
        return TokenHolder(token_id=token.id, name=token.name)
