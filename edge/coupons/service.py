"""Coupons on carts: checked here, reserved at the cloud when it answers, redeemed by the sale.

``POST /api/v1/carts/{id}/coupons {"code"}`` takes what the coupon's QR holds (its signed code,
:mod:`shared.coupon_codes`) or the coupon id printed under it. The checks, in order, each with
its own error:

1. the code: 422 ``coupon_invalid`` when it is no coupon code, or its signature does not hold
   (one character changed, another key, a stretched date: all forged). A typed id needs the
   cloud to give its code: offline, 409 ``coupon_needs_scan``.
2. the campaign (by the code's number, from the ``coupon_campaigns`` feed): 409
   ``coupon_unknown_campaign`` when this store has not pulled it yet, ``coupon_withdrawn``.
3. the dates on the store's clock: 409 ``coupon_not_yet_valid``, ``coupon_expired``.
4. the cart: 409 ``coupon_in_cart`` (this coupon), ``campaign_in_cart`` (another coupon of its
   campaign).
5. the member: 409 ``coupon_not_eligible`` with ``reason`` ``no_member`` or ``other_member``.
6. this store's own record: 409 ``coupon_used`` (a sale here redeemed it and no return gave it
   back), ``coupon_reserved`` (it is on another open cart here).
7. the offer: 409 ``coupon_not_eligible`` with ``reason`` ``wrong_store``, ``min_spend`` (with
   ``min_spend`` and ``short_by``), ``no_eligible_items`` or ``not_now``.
8. the cloud, when it answers in time: it reserves the coupon for the cart, or refuses it
   (``coupon_used``, ``coupon_reserved``, ``coupon_not_eligible``, ``coupon_budget_reached``).
   When it does not answer, the store accepts the coupon offline: what slips through (the same
   coupon at another store offline) reaches the cloud as a ``coupon_double_use`` exception.

A campaign's **public code** (a poster's ``SPRING20``, any case, typed or scanned) is read
in step 1 too: the campaign must be in force (steps 2 and 3); the cart must not hold it already
(``coupon_in_cart``); a member on the cart may use it ``per_member_limit`` times at this store
(409 ``coupon_member_limit``); and this store's quota of the campaign, pulled from the cloud,
bounds its redemptions here, open carts included, online or not (409 ``coupon_quota_reached``
with ``quota`` and ``used``). Each use gets a coupon id of its own.

The coupon's offer then prices the cart at the coupon stage (after line and basket offers,
before points). A sale redeems each coupon that took something off; a return of every line
gives the coupons back when their campaign says so.
"""

from __future__ import annotations

import functools
import sqlite3
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, replace
from datetime import datetime
from typing import Any

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey
from sqlalchemy import text
from sqlalchemy.orm import Session

from edge.coupons.models import StoreCampaign, StoreCouponQuota
from edge.coupons.online import CouponCloud
from edge.db import Database, RawTransaction, to_sql_time
from edge.errors import Conflict, NotFound, Unprocessable
from edge.sync_client.link import link_of
from shared import coupon_codes
from shared import promotions as offers
from sync import keys
from sync.contract import CampaignItem, CouponQuotaItem

#: What a coupon's offer is called among a cart's discounts: ``coupon:<campaign id>``.
PREFIX = "coupon:"


def promotion_id(campaign_id: str) -> str:
    return PREFIX + campaign_id


@functools.lru_cache(maxsize=256)
def _campaign(doc: str) -> CampaignItem:
    return CampaignItem.model_validate_json(doc)


def promotion_of(item: CampaignItem) -> offers.Promotion:
    """The campaign's offer under its own id among a cart's discounts."""
    return replace(item.to_promotion(), id=promotion_id(item.id))


@dataclass(frozen=True)
class OnCart:
    """A coupon on a cart, with its campaign's offer."""

    coupon_id: str
    campaign_id: str
    name: str
    reservation_id: str | None
    offer: offers.Promotion

    @classmethod
    def of(cls, coupon_id: str, item: CampaignItem, reservation_id: str | None) -> OnCart:
        return cls(coupon_id, item.id, item.name, reservation_id, promotion_of(item))


_ON_CART = (
    "SELECT cc.coupon_id, cc.campaign_id, cc.reservation_id, c.doc FROM cart_coupons cc "
    "JOIN coupon_campaigns c ON c.id = cc.campaign_id WHERE cc.cart_id = ? "
    "ORDER BY cc.campaign_id"
)


def coupons_on(tx: RawTransaction, cart_id: str) -> tuple[OnCart, ...]:
    """The coupons on a cart (read in the cart's transaction)."""
    return tuple(_on_cart(*row) for row in tx.all(_ON_CART, (cart_id,)))


@functools.lru_cache(maxsize=1024)
def _on_cart(coupon_id: str, campaign_id: str, reservation_id: str | None, doc: str) -> OnCart:
    # Built once per coupon and campaign version: every scan of a cart with a coupon prices it.
    return OnCart.of(coupon_id, _campaign(doc), reservation_id)


def apply_campaign_items(session: Session, items: Iterable[CampaignItem], now: datetime) -> None:
    """The ``coupon_campaigns`` feed's items, in the pull's transaction: each kept as it now
    is (a withdrawn one too, inactive)."""
    for item in items:
        session.merge(
            StoreCampaign(
                id=item.id,
                number=item.number,
                doc=item.model_dump_json(),
                active=item.active,
                updated_at=now,
                public_code=None
                if item.public_code is None
                else coupon_codes.normalise(item.public_code),
            )
        )


def apply_quota_items(session: Session, items: Iterable[CouponQuotaItem], now: datetime) -> None:
    """The ``coupon_quotas`` feed's items (this store's own), in the pull's transaction."""
    for item in items:
        session.merge(
            StoreCouponQuota(campaign_id=item.campaign_id, quota=item.quota, updated_at=now)
        )


@functools.lru_cache(maxsize=4)
def _public_key(text: str) -> Ed25519PublicKey:
    return keys.load_public_key_b64(text)


def _cloud_key(db: Database) -> Ed25519PublicKey | None:
    link = link_of(db)
    return None if link is None else _public_key(link.cloud_public_key)


@dataclass(frozen=True)
class Checked:
    """A coupon whose code, campaign and dates hold: what the cart's write needs. ``code`` is
    None for a campaign's public code (``coupon_id`` is then this use's own)."""

    coupon_id: str
    text: str  # the signed code, or the public code as read
    campaign: CampaignItem
    code: coupon_codes.CouponCode | None

    @property
    def public(self) -> bool:
        return self.code is None


def _in_force(campaign: CampaignItem, active: bool) -> None:
    if not active:
        raise Conflict(
            f"the campaign {campaign.name!r} was withdrawn",
            code="coupon_withdrawn",
            details={"campaign_id": campaign.id},
        )


def _in_dates(valid_from: datetime, valid_until: datetime, now: datetime) -> None:
    if now < valid_from:
        raise Conflict(
            "this coupon is not valid yet",
            code="coupon_not_yet_valid",
            details={"valid_from": valid_from.isoformat()},
        )
    if now >= valid_until:
        raise Conflict(
            "this coupon has expired",
            code="coupon_expired",
            details={"valid_until": valid_until.isoformat()},
        )


_PUBLIC = (
    "SELECT doc, active FROM coupon_campaigns WHERE public_code = ? "
    "ORDER BY active DESC, updated_at DESC LIMIT 1"
)


def _public(db: Database, text: str, now: datetime) -> Checked | None:
    """The campaign whose public code ``text`` is, checked (None: no campaign has it)."""
    if not 4 <= len(text) <= 12:
        return None
    with db.raw_read() as tx:
        row = tx.one(_PUBLIC, (text,))
    if row is None:
        return None
    campaign = _campaign(row[0])
    _in_force(campaign, bool(row[1]))
    _in_dates(campaign.valid_from, campaign.valid_until, now)
    return Checked(coupon_codes.new_coupon_id(), text, campaign, None)


def read_code(db: Database, cloud: CouponCloud | None, typed: str, *, now: datetime) -> Checked:
    """Steps 1 to 3 of the module docstring."""
    text = coupon_codes.normalise(typed)
    public = _public(db, text, now)
    if public is not None:
        return public
    if coupon_codes.is_coupon_id(text):
        found = None if cloud is None else cloud.find(text, now=now)
        if found is None:
            raise Conflict(
                "the store cannot reach the cloud to look up a typed coupon id: scan the "
                "coupon's QR code instead",
                code="coupon_needs_scan",
                details={"coupon_id": coupon_codes.show_id(text)},
            )
        text = coupon_codes.normalise(found.code)
    if not coupon_codes.is_signed_code(text):
        raise Unprocessable("this is not a coupon code", code="coupon_invalid")
    public_key = _cloud_key(db)
    if public_key is None:
        raise Conflict(
            "this store is not enrolled with a cloud: it cannot check coupons",
            code="coupon_unavailable",
        )
    try:
        code = coupon_codes.verify(public_key, text)
    except coupon_codes.CodeInvalid:
        raise Unprocessable(
            "this coupon code is forged or damaged: its signature does not hold",
            code="coupon_invalid",
        ) from None
    with db.raw_read() as tx:
        row = tx.one(
            "SELECT doc, active FROM coupon_campaigns WHERE number = ?", (code.campaign_number,)
        )
    if row is None:
        raise Conflict(
            "this store does not know the coupon's campaign yet (it arrives with the next pull)",
            code="coupon_unknown_campaign",
            details={"campaign_number": code.campaign_number},
        )
    campaign = _campaign(row[0])
    _in_force(campaign, bool(row[1]))
    _in_dates(code.valid_from, code.valid_until, now)
    return Checked(code.coupon_id, text, campaign, code)


_USED = "SELECT 1 FROM sale_coupons WHERE coupon_id = ? AND restored_by IS NULL LIMIT 1"
_ON_OTHER_CART = (
    "SELECT 1 FROM cart_coupons cc JOIN carts c ON c.id = cc.cart_id "
    "WHERE cc.coupon_id = ? AND c.status = 'open' AND c.id != ? LIMIT 1"
)


def check_here(
    tx: RawTransaction,
    checked: Checked,
    *,
    cart_id: str,
    member_id: str | None,
    on_cart: Sequence[OnCart],
) -> None:
    """Steps 4 to 6, in the cart's write transaction."""
    if checked.public:
        _check_public_here(tx, checked, cart_id=cart_id, member_id=member_id, on_cart=on_cart)
        return
    assert checked.code is not None
    coupon_id = checked.coupon_id
    if any(c.coupon_id == coupon_id for c in on_cart):
        raise Conflict(
            "this coupon is on the cart already",
            code="coupon_in_cart",
            details={"coupon_id": coupon_id},
        )
    same = next((c for c in on_cart if c.campaign_id == checked.campaign.id), None)
    if same is not None:
        raise Conflict(
            "a coupon of this campaign is on the cart already",
            code="campaign_in_cart",
            details={"coupon_id": same.coupon_id, "campaign_id": same.campaign_id},
        )
    if member_id is None:
        raise Conflict(
            "attach the member the coupon was issued to first",
            code="coupon_not_eligible",
            details={"reason": "no_member"},
        )
    if not checked.code.for_member(member_id):
        raise Conflict(
            "this coupon was issued to another member",
            code="coupon_not_eligible",
            details={"reason": "other_member"},
        )
    if tx.one(_USED, (coupon_id,)) is not None:
        raise Conflict("this coupon was used already", code="coupon_used")
    if tx.one(_ON_OTHER_CART, (coupon_id, cart_id)) is not None:
        raise Conflict("this coupon is on another cart", code="coupon_reserved")


_USED_BY_MEMBER = (
    "SELECT (SELECT count(*) FROM sale_coupons sc JOIN sales s ON s.id = sc.sale_id "
    "        WHERE sc.campaign_id = :campaign AND sc.restored_by IS NULL "
    "        AND s.member_id = :member)"
    " + (SELECT count(*) FROM cart_coupons cc JOIN carts c ON c.id = cc.cart_id "
    "    WHERE cc.campaign_id = :campaign AND c.status = 'open' AND c.id != :cart "
    "    AND c.member_id = :member)"
)
_USED_HERE = (
    "SELECT (SELECT count(*) FROM sale_coupons "
    "        WHERE campaign_id = :campaign AND restored_by IS NULL)"
    " + (SELECT count(*) FROM cart_coupons cc JOIN carts c ON c.id = cc.cart_id "
    "    WHERE cc.campaign_id = :campaign AND c.status = 'open' AND c.id != :cart)"
)


def _check_public_here(
    tx: RawTransaction,
    checked: Checked,
    *,
    cart_id: str,
    member_id: str | None,
    on_cart: Sequence[OnCart],
) -> None:
    """A public code: once a cart, ``per_member_limit`` times a member here, within this
    store's quota (sales and open carts count)."""
    campaign = checked.campaign
    if any(c.campaign_id == campaign.id for c in on_cart):
        raise Conflict(
            "this code is on the cart already",
            code="coupon_in_cart",
            details={"campaign_id": campaign.id},
        )
    where = {"campaign": campaign.id, "cart": cart_id, "member": member_id}
    if member_id is not None:
        used = int(tx.one(_USED_BY_MEMBER, where)[0])
        if used >= campaign.per_member_limit:
            raise Conflict(
                f"this member has used this code {used} times here, its limit",
                code="coupon_member_limit",
                details={"limit": campaign.per_member_limit, "used": used},
            )
    row = tx.one("SELECT quota FROM coupon_quotas WHERE campaign_id = ?", (campaign.id,))
    quota = 0 if row is None else int(row[0])
    used = int(tx.one(_USED_HERE, where)[0])
    if used >= quota:
        raise Conflict(
            "this store has given all its share of this code's redemptions"
            if quota
            else "this store has no share of this code's redemptions yet (the cloud sends one)",
            code="coupon_quota_reached",
            details={"campaign_id": campaign.id, "quota": quota, "used": used},
        )


def not_eligible(
    offer: offers.Promotion,
    *,
    store_id: str,
    worth: int,
    amount: int,
) -> Conflict | None:
    """Step 7: why the offer takes nothing off the cart (None: it does). ``worth`` is what the
    lines the offer looks at come to."""
    if amount > 0:
        return None
    if offer.stores and store_id not in offer.stores:
        return Conflict(
            "this coupon is not valid in this store",
            code="coupon_not_eligible",
            details={"reason": "wrong_store", "stores": sorted(offer.stores)},
        )
    if worth == 0:
        return Conflict(
            "nothing on the cart is covered by this coupon",
            code="coupon_not_eligible",
            details={"reason": "no_eligible_items"},
        )
    need = offer.least_spend
    if need and worth < need:
        return Conflict(
            f"spend {need - worth} more on the items this coupon covers to use it",
            code="coupon_not_eligible",
            details={"reason": "min_spend", "min_spend": need, "short_by": need - worth},
        )
    return Conflict(
        "this coupon's offer does not run now",
        code="coupon_not_eligible",
        details={"reason": "not_now"},
    )


def add_to_cart(
    tx: RawTransaction,
    cart_id: str,
    checked: Checked,
    reservation_id: str | None,
    *,
    now: datetime,
) -> None:
    try:
        tx.run(
            "INSERT INTO cart_coupons (cart_id, coupon_id, campaign_id, code, reservation_id, "
            "added_at) VALUES (?, ?, ?, ?, ?, ?)",
            (
                cart_id,
                checked.coupon_id,
                checked.campaign.id,
                checked.text,
                reservation_id,
                to_sql_time(now),
            ),
        )
    except sqlite3.IntegrityError:
        raise Conflict("this coupon is on the cart already", code="coupon_in_cart") from None


def remove_from_cart(tx: RawTransaction, cart_id: str, coupon_id: str) -> str | None:
    """Take a coupon off a cart: its reservation id (None: it had none); 404
    ``unknown_coupon`` when the cart has no such coupon."""
    row = tx.one(
        "SELECT reservation_id FROM cart_coupons WHERE cart_id = ? AND coupon_id = ?",
        (cart_id, coupon_id),
    )
    if row is None:
        raise NotFound(
            "this coupon is not on the cart",
            code="unknown_coupon",
            details={"coupon_id": coupon_id},
        )
    tx.run("DELETE FROM cart_coupons WHERE cart_id = ? AND coupon_id = ?", (cart_id, coupon_id))
    return row[0]


def record_sale_coupons(
    tx: RawTransaction, sale_id: str, coupons: Sequence[dict[str, Any]]
) -> None:
    """The coupons a sale redeemed, in the sale's transaction; 409 ``coupon_used`` when a sale
    here redeemed one of them meanwhile (two carts of this store, offline)."""
    for coupon in coupons:
        if tx.one(_USED, (coupon["coupon_id"],)) is not None:
            raise Conflict(
                "a coupon on this cart was used by another sale meanwhile; take it off",
                code="coupon_used",
                details={"coupon_id": coupon["coupon_id"]},
            )
    tx.cur.executemany(
        "INSERT INTO sale_coupons (sale_id, coupon_id, campaign_id, amount, reservation_id) "
        "VALUES (?, ?, ?, ?, ?)",
        [
            (sale_id, c["coupon_id"], c["campaign_id"], c["amount"], c["reservation_id"])
            for c in coupons
        ],
    )


def sale_coupons_of(session: Session, sale_id: str) -> list[dict[str, Any]]:
    rows = session.execute(
        text(
            "SELECT coupon_id, campaign_id, amount, reservation_id, restored_by "
            "FROM sale_coupons WHERE sale_id = :sale ORDER BY campaign_id"
        ),
        {"sale": sale_id},
    ).all()
    return [
        {
            "coupon_id": r[0],
            "campaign_id": r[1],
            "amount": r[2],
            "reservation_id": r[3],
            "restored": r[4] is not None,
        }
        for r in rows
    ]


def give_back(session: Session, sale_id: str, return_id: str) -> list[str]:
    """A return that brought every line of the sale back: its coupons whose campaign says so
    are given back (here, and at the cloud by the return's event). Answers their ids."""
    rows = session.execute(
        text(
            "SELECT sc.coupon_id, c.doc FROM sale_coupons sc "
            "LEFT JOIN coupon_campaigns c ON c.id = sc.campaign_id "
            "WHERE sc.sale_id = :sale AND sc.restored_by IS NULL"
        ),
        {"sale": sale_id},
    ).all()
    back = [r[0] for r in rows if r[1] is not None and _campaign(r[1]).restore_on_refund]
    for coupon_id in back:
        session.execute(
            text(
                "UPDATE sale_coupons SET restored_by = :ret "
                "WHERE sale_id = :sale AND coupon_id = :coupon"
            ),
            {"ret": return_id, "sale": sale_id, "coupon": coupon_id},
        )
    return back
