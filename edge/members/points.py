"""A member spending points at the checkout: points pay part of the total, at the store's
``members.point_value``, and show as a tender of the sale.

Online, the cloud holds the points for the cart (a hold with a time to live, turned into the
burn by the sale's event; an abandoned cart's hold lapses), so two stores cannot spend the same
points at the same moment. While the cloud does not answer in time, a member may spend at most
the smaller of two amounts (:func:`offline_limit`): the balance this store last knew less what
it has spent since, and a daily cap per member at this store. Whatever slips through (another
store spending the same points offline) reaches the cloud as an overdraft exception with its
amount.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, time
from zoneinfo import ZoneInfo

from edge.auth.service import Principal
from edge.checkout.carts import (
    CartMember,
    CartView,
    MemberChanged,
    check_channel,
    create_cart,
    load_cart,
    require_open,
    set_member,
    set_points,
    view_of,
)
from edge.db import Database, RawTransaction, to_sql_time
from edge.errors import Conflict, Forbidden
from edge.idempotency import Retryable
from edge.members.online import MemberCloud
from edge.members.service import bind_device, find_member
from edge.pricing.store_promotions import Shop
from edge.settings import EdgeSettings
from shared.ids import new_id
from shared.member_codes import is_member_code
from shared.pii import Keyring

#: Points one cart may spend (the hold's and the contract's bound).
MAX_POINTS = 10_000_000


@dataclass(frozen=True)
class PointsRules:
    """The store's settings for spending points."""

    point_value: int  # minor units one point pays
    daily_cap: int  # points one member may spend here a day while offline
    timezone: str  # where a day begins

    @classmethod
    def of(cls, settings: EdgeSettings) -> PointsRules:
        members = settings.members
        return cls(
            point_value=members.point_value,
            daily_cap=members.offline_daily_cap,
            timezone=settings.store.timezone,
        )


@dataclass(frozen=True)
class OfflineLimit:
    limit: int
    balance: int  # the balance this store knows, less points set on its other offline carts
    daily_cap: int
    spent_today: int  # spent offline here today, with the other offline carts' points

    def to_dict(self) -> dict[str, int]:
        return {
            "limit": self.limit,
            "balance": self.balance,
            "daily_cap": self.daily_cap,
            "spent_today": self.spent_today,
        }


_BALANCE = "SELECT balance FROM members WHERE id = ?"
_ON_OTHER_CARTS = (
    "SELECT COALESCE(SUM(points), 0) FROM carts WHERE member_id = ? AND status = 'open' "
    "AND points_hold_id IS NULL AND id != ?"
)
_SPENT_OFFLINE_SINCE = (
    "SELECT COALESCE(SUM(points_burned), 0) FROM sales WHERE created_at >= ? AND member_id = ? "
    "AND points_hold_id IS NULL"
)


def offline_limit(
    tx: RawTransaction, member_id: str, cart_id: str, rules: PointsRules, *, now: datetime
) -> OfflineLimit:
    """The most ``member_id`` may spend on ``cart_id`` without the cloud: the store's balance
    (already less what it spent since the cloud's last word) less the points set on the
    member's other carts offline, and the daily cap less what was spent offline here today."""
    row = tx.one(_BALANCE, (member_id,))
    balance = 0 if row is None else int(row[0])
    other_carts = int(tx.one(_ON_OTHER_CARTS, (member_id, cart_id))[0])
    zone = ZoneInfo(rules.timezone)
    day_start = datetime.combine(now.astimezone(zone).date(), time(0), zone)
    spent = int(tx.one(_SPENT_OFFLINE_SINCE, (to_sql_time(day_start), member_id))[0])
    free = balance - other_carts
    spent_today = spent + other_carts
    return OfflineLimit(
        limit=max(0, min(free, rules.daily_cap - spent_today)),
        balance=free,
        daily_cap=rules.daily_cap,
        spent_today=spent_today,
    )


def spend_points(
    db: Database,
    cloud: MemberCloud | None,
    principal: Principal,
    cart_id: str,
    points: int,
    rules: PointsRules,
    *,
    shop: Shop,
    now: datetime,
) -> CartView:
    """Set the points the cart's member spends on it (0: none); see the module docstring."""
    with db.raw_read() as tx:
        cart = load_cart(tx, principal, cart_id)
        view = view_of(tx, cart, shop)
    require_open(cart)
    if cart.member_id is None:
        raise Conflict(
            "attach a member before spending points",
            code="no_member",
            details={"cart_id": cart_id},
        )
    if points and principal.is_shopper and not cart.member_by_code:
        raise Forbidden(
            "to spend points here, scan the member code the member's own app shows (a phone "
            "number earns points but does not prove who is spending them)",
            code="member_code_required",
            details={"cart_id": cart_id},
        )
    member_id = cart.member_id
    value = points * rules.point_value
    if value > view.totals.total:
        raise Conflict(
            "points may pay at most the cart's total",
            code="points_exceed_total",
            details={
                "total": view.totals.total,
                "max_points": view.totals.total // rules.point_value,
                "asked": points,
            },
        )
    hold_id: str | None = None
    if points:
        wanted = new_id()
        held = (
            None if cloud is None else cloud.hold(member_id, hold_id=wanted, points=points, now=now)
        )
        if held is not None:
            hold_id = held.hold_id
        else:
            with db.raw_read() as tx:
                limit = offline_limit(tx, member_id, cart.id, rules, now=now)
            if points > limit.limit:
                raise Conflict(
                    f"while the store is offline this member may spend at most {limit.limit} "
                    "points here",
                    code="points_offline_limit",
                    details={**limit.to_dict(), "asked": points},
                )
    try:
        changed = set_points(
            db,
            principal,
            cart_id,
            points=points,
            value=value,
            hold_id=hold_id,
            expected=cart,
            shop=shop,
            now=now,
        )
    except BaseException:
        if hold_id is not None and cloud is not None:
            cloud.release(hold_id, now=now)
        raise
    if cart.points_hold_id is not None and cloud is not None:
        cloud.release(cart.points_hold_id, now=now)  # the points set before are given back
    return changed


def change_member(
    db: Database,
    cloud: MemberCloud | None,
    principal: Principal,
    cart_id: str,
    member_id: str | None,
    *,
    shop: Shop,
    now: datetime,
    online: bool = False,
    by_code: bool = False,
) -> CartView:
    """Attach ``member_id`` to the cart (None: detach). Points another member set on the cart
    come off with them, and their hold is given back to the cloud (when it does not answer, the
    hold lapses there by itself)."""
    view, dropped_hold = set_member(
        db, principal, cart_id, member_id, shop=shop, now=now, online=online, by_code=by_code
    )
    if dropped_hold is not None and cloud is not None:
        cloud.release(dropped_hold, now=now)
    return view


#: Lookups an attach makes when merges keep renaming the member under it (one is the rule).
ATTACH_TRIES = 3


def attach_member(
    db: Database,
    keyring: Keyring,
    cloud: MemberCloud | None,
    principal: Principal,
    cart_id: str,
    typed: str,
    *,
    region: str,
    shop: Shop,
    now: datetime,
) -> CartView:
    """Attach the member a member code or phone number names (the cloud asked first). A code
    proves the member (their own app shows it): a shopper's kiosk or phone may then spend their
    points, and a shopper's own phone may read their ledger from then on."""
    return _for_member(
        db,
        keyring,
        cloud,
        principal,
        typed,
        region=region,
        now=now,
        write=lambda member: change_member(
            db,
            cloud,
            principal,
            cart_id,
            member.member_id,
            shop=shop,
            now=now,
            online=member.online,
            by_code=member.by_code,
        ),
    )


def open_cart_for(
    db: Database,
    keyring: Keyring,
    cloud: MemberCloud | None,
    principal: Principal,
    typed: str,
    *,
    channel: str,
    currency: str,
    region: str,
    now: datetime,
    retry: Retryable | None = None,
) -> CartView:
    """Open a cart for the member a member code or phone number names (found as
    :func:`attach_member` finds them): one request where a shopper who shows their code first
    would make two, and nothing opened when nobody has that code (404 ``unknown_member``)."""
    check_channel(principal, channel)
    return _for_member(
        db,
        keyring,
        cloud,
        principal,
        typed,
        region=region,
        now=now,
        write=lambda member: create_cart(
            db,
            principal,
            channel=channel,
            currency=currency,
            now=now,
            retry=retry,
            member=member,
        ),
    )


def _for_member(
    db: Database,
    keyring: Keyring,
    cloud: MemberCloud | None,
    principal: Principal,
    typed: str,
    *,
    region: str,
    now: datetime,
    write: Callable[[CartMember], CartView],
) -> CartView:
    """Look the member up and ``write`` the cart for them; when the store's pull merged them
    away between the lookup and the write (409 ``member_changed``, nothing written), the lookup,
    made again, finds them under the survivor's id. A phone that showed the member's code may
    read their ledger from then on."""
    by_code = is_member_code(typed.strip())
    for attempt in range(ATTACH_TRIES):
        member, online = find_member(db, keyring, typed, region=region, now=now, cloud=cloud)
        try:
            view = write(CartMember(member.id, online, by_code))
            break
        except MemberChanged:
            if attempt == ATTACH_TRIES - 1:
                raise
    if by_code and principal.role == "phone":
        bind_device(db, member.id, principal.device_id, now=now)
    return view
