"""The store asking the cloud about coupons, on the member calls' channel and timeout
(:class:`edge.members.online.MemberCloud`: the same quiet time after the cloud failed to answer).

Every call answers what the cloud said, or ``None`` when it did not answer in time; the caller
then works offline. The cloud's refusals about the coupon itself (used, on another cart, another
member's, budget spent, unknown, limits reached) are passed on as they are: they are the chain's
answer, not a failure of the link.
"""

from __future__ import annotations

import logging
from datetime import datetime
from typing import TypeVar

from pydantic import ValidationError

from edge.errors import Conflict, NotFound
from edge.members.online import MemberCloud
from edge.sync_client.transport import CloudLinkError, CloudRefused
from sync.contract import ClaimRequest, CouponList, CouponOut, CouponReserved, ReserveRequest
from sync.protocol import canonical_json

log = logging.getLogger(__name__)

_JSON = {"Content-Type": "application/json"}
#: The cloud's refusals that are about the coupon, passed on to the device as 409s.
PASSED_ON = frozenset(
    {
        "coupon_used",
        "coupon_reserved",
        "coupon_not_eligible",
        "coupon_budget_reached",
        "coupon_member_limit",
        "coupon_cap_reached",
        "campaign_ended",
        "campaign_inactive",
    }
)


def _passed_on(exc: CloudRefused) -> None:
    if exc.code in PASSED_ON:
        raise Conflict(exc.message, code=exc.code, details=dict(exc.details)) from None
    if exc.code in ("unknown_coupon", "unknown_campaign", "unknown_member"):
        raise NotFound(exc.message, code=exc.code) from None


class CouponCloud:
    """The store's coupon calls to its cloud; safe to share between threads."""

    def __init__(self, calls: MemberCloud) -> None:
        self._calls = calls

    def _call(self, what: str, method: str, path: str, *, now: datetime, **kw: object) -> object:
        channel = self._calls.channel()
        if channel is None:
            return None
        try:
            return channel.client.call(method, path, now=now, **kw).body  # type: ignore[arg-type]
        except CloudRefused as exc:
            _passed_on(exc)
            self._calls.gave_up(what, exc)
            return None
        except CloudLinkError as exc:
            self._calls.gave_up(what, exc)
            return None

    def find(self, coupon_id: str, *, now: datetime) -> CouponOut | None:
        """The coupon a typed id names, with its signed code; 404 ``unknown_coupon``."""
        body = self._call("find", "GET", f"/api/v1/store/coupons/{coupon_id}", now=now)
        return None if body is None else _read(CouponOut, body)

    def reserve(
        self,
        coupon_id: str,
        *,
        reservation_id: str,
        member_id: str | None,
        amount: int,
        now: datetime,
    ) -> CouponReserved | None:
        """Reserve the coupon for a cart; the cloud's 409s passed on."""
        request = ReserveRequest(reservation_id=reservation_id, member_id=member_id, amount=amount)
        body = self._call(
            "reserve",
            "POST",
            f"/api/v1/store/coupons/{coupon_id}/reservations",
            now=now,
            body=canonical_json(request.model_dump()),
            headers=_JSON,
        )
        return None if body is None else _read(CouponReserved, body)

    def release(self, reservation_id: str, *, now: datetime) -> bool:
        """Give a reservation back; False when the cloud did not answer (it lapses there)."""
        body = self._call(
            "release", "DELETE", f"/api/v1/store/coupon-reservations/{reservation_id}", now=now
        )
        return body is not None

    def claim(self, member_id: str, campaign_id: str, *, now: datetime) -> CouponOut | None:
        """Claim a coupon of the campaign for the member; the cloud's 409s passed on."""
        body = self._call(
            "claim",
            "POST",
            f"/api/v1/store/members/{member_id}/coupons",
            now=now,
            body=canonical_json(ClaimRequest(campaign_id=campaign_id).model_dump()),
            headers=_JSON,
        )
        return None if body is None else _read(CouponOut, body)

    def member_coupons(self, member_id: str, *, now: datetime) -> CouponList | None:
        body = self._call("list", "GET", f"/api/v1/store/members/{member_id}/coupons", now=now)
        return None if body is None else _read(CouponList, body)


_T = TypeVar("_T", CouponOut, CouponReserved, CouponList)


def _read(kind: type[_T], body: object) -> _T | None:
    try:
        return kind.model_validate(body)
    except ValidationError:
        log.warning("the cloud's %s answer is unusable", kind.__name__)
        return None
