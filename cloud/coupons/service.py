"""Coupon campaigns and their coupons at the cloud: HQ writes campaigns, the cloud issues coupons
to members (by HQ, or a member claiming one by the campaign's QR in a store), a store reserves a
coupon for a cart while online, and a sale's event redeems it.

The rules that bound double use:

* **Online**, a store reserves the coupon before it takes it off a cart. The coupon's row is
  locked while the reservation is decided, so of two stores (or two carts) asking at once, one
  gets it and the other hears 409 ``coupon_reserved`` (or ``coupon_used`` once the sale's event
  has arrived). A reservation lapses after its time to live: an abandoned cart frees the coupon.
* **Offline**, a store accepts a coupon whose signature and dates hold and that it has not seen
  used itself (``edge.coupons``). Two stores may then both accept one coupon. Both sales
  happened: both redemptions are kept, and the second to arrive raises one
  ``coupon_double_use`` reconciliation exception with the amount it took off (the amount at
  risk), listed with the points overdrafts.
* A campaign's ``cap`` bounds the coupons issued and its ``budget`` the money the coupons
  reserved online may take off; ``per_member_limit`` bounds the coupons one member holds.
* A **public** campaign's code (``public_code``) is not issued to anyone: any shopper types it.
  Its ``cap`` is split into per-store quotas (:func:`rebalance`) that each store enforces
  offline, so the stores cannot together pass the cap, whatever their links do.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from pydantic import TypeAdapter
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from cloud.authoring import checked as check_items
from cloud.authoring import read_list
from cloud.changes.log import record_changes
from cloud.coupons.models import (
    Coupon,
    CouponCampaign,
    CouponQuota,
    CouponRedemption,
    CouponReservation,
)
from cloud.errors import Conflict, Forbidden, NotFound, Unprocessable
from cloud.members.ledger import lock_member, survivor_id
from cloud.members.models import Member
from cloud.reconciliation.service import raise_exception
from cloud.stores.models import Store
from cloud.stores.service import on_enrolled
from shared import coupon_codes
from sync.contract import (
    FEED_COUPON_CAMPAIGNS,
    FEED_COUPON_QUOTAS,
    CampaignItem,
    CouponQuotaItem,
    QuotaOut,
    SaleCoupon,
)

MAX_PER_WRITE = 500
_ITEMS = TypeAdapter(list[CampaignItem])


# -- campaigns -------------------------------------------------------------------------------


def read_file(name: str, data: bytes) -> list[CampaignItem]:
    """The campaigns of a JSON or TOML file: ``{"campaigns": [...]}`` (TOML: ``[[campaigns]]``
    tables), or, in JSON, the list alone."""
    return checked(read_list(name, data, "campaigns"))


def checked(doc: list[Any]) -> list[CampaignItem]:
    """Campaigns as HQ wrote them; ``Unprocessable`` naming the first that is wrong."""
    return check_items(_ITEMS, doc, noun="campaign", most=MAX_PER_WRITE)


def put_campaigns(
    session: Session, items: Sequence[CampaignItem], *, now: datetime
) -> list[CampaignItem]:
    """Write ``items`` (each replaces the campaign of its id, keeping its number), in the
    caller's transaction; every store pulls them."""
    ids = [item.id for item in items]
    if len(set(ids)) != len(ids):
        raise Unprocessable(
            "a campaign id appears twice in one write",
            code="duplicate_campaign",
            details={"ids": sorted({i for i in ids if ids.count(i) > 1})[:20]},
        )
    _public_codes_unique(session, items)
    rows = {
        row.id: row
        for row in session.execute(
            select(CouponCampaign).where(CouponCampaign.id.in_(ids)).with_for_update()
        ).scalars()
    }
    next_number = (session.scalar(select(func.max(CouponCampaign.number))) or 0) + 1
    saved = []
    for item in items:
        row = rows.get(item.id)
        number = row.number if row is not None else next_number
        if row is None:
            next_number += 1
        stamped = item.model_copy(update={"number": number, "updated_at": now.isoformat()})
        doc = stamped.model_dump_json()
        if row is None:
            session.add(
                CouponCampaign(
                    id=item.id, number=number, doc=doc, active=item.active, updated_at=now
                )
            )
        else:
            row.doc, row.active, row.updated_at = doc, item.active, now
        saved.append(stamped)
    record_changes(session, [(FEED_COUPON_CAMPAIGNS, item.id, None) for item in saved], now=now)
    session.flush()
    for item in saved:
        if item.public_code is not None and item.active:
            rebalance(session, item.id, now=now)
    return saved


def _public_codes_unique(session: Session, items: Sequence[CampaignItem]) -> None:
    """409 ``public_code_taken`` when two campaigns would answer one typed code (codes are
    compared as a store reads them: case, dashes and O/0, I/L/1 aside)."""
    ids = {item.id for item in items}
    taken = {
        coupon_codes.normalise(item.public_code): item.id
        for item in list_campaigns(session)
        if item.public_code is not None and item.id not in ids
    }
    for item in items:
        if item.public_code is None:
            continue
        key = coupon_codes.normalise(item.public_code)
        if key in taken:
            raise Conflict(
                f"campaign {taken[key]!r} has the public code {item.public_code!r} already",
                code="public_code_taken",
                details={"campaign_id": taken[key], "public_code": item.public_code},
            )
        taken[key] = item.id


def claim_text(item: CampaignItem) -> str:
    """What a campaign's poster QR holds: a public code itself (it goes straight onto a cart),
    or the claim of a personal coupon (a phone claims one into the member's account)."""
    return item.public_code or coupon_codes.CLAIM_PREFIX + item.id


def list_campaigns(session: Session, *, active_only: bool = False) -> list[CampaignItem]:
    query = select(CouponCampaign.doc).order_by(CouponCampaign.id)
    if active_only:
        query = query.where(CouponCampaign.active.is_(True))
    return [CampaignItem.model_validate_json(doc) for doc in session.execute(query).scalars()]


def campaign(session: Session, campaign_id: str, *, lock: bool = False) -> CampaignItem:
    query = select(CouponCampaign.doc).where(CouponCampaign.id == campaign_id)
    doc = session.execute(query.with_for_update() if lock else query).scalar()
    if doc is None:
        raise NotFound(f"no campaign {campaign_id!r}", code="unknown_campaign")
    return CampaignItem.model_validate_json(doc)


def campaign_items(session: Session, keys: Sequence[str]) -> list[tuple[str, CampaignItem]]:
    """The campaigns of ``keys`` as the feed carries them, in the keys' order."""
    docs = dict(
        session.execute(
            select(CouponCampaign.id, CouponCampaign.doc).where(CouponCampaign.id.in_(keys))
        ).all()
    )
    return [(k, CampaignItem.model_validate_json(docs[k])) for k in keys if k in docs]


def campaign_ids_after(session: Session, after: str, limit: int) -> tuple[list[str], bool]:
    found = list(
        session.execute(
            select(CouponCampaign.id)
            .where(CouponCampaign.id > after)
            .order_by(CouponCampaign.id)
            .limit(limit + 1)
        ).scalars()
    )
    return found[:limit], len(found) > limit


# -- coupons ---------------------------------------------------------------------------------


def coupon_dict(coupon: Coupon, item: CampaignItem) -> dict[str, Any]:
    return {
        "id": coupon.id,
        "campaign_id": coupon.campaign_id,
        "name": item.name,
        "member_id": coupon.member_id,
        "code": coupon.code,
        "status": coupon.status,
        "valid_from": item.valid_from.isoformat(),
        "valid_until": item.valid_until.isoformat(),
        "issued_at": coupon.issued_at.isoformat(),
    }


@dataclass(frozen=True)
class Issuer:
    """Who issues coupons: the cloud's key signs their codes."""

    key: Ed25519PrivateKey


def issue(
    session: Session,
    issuer: Issuer,
    campaign_id: str,
    member_id: str,
    *,
    via: str,
    store_id: str | None,
    now: datetime,
) -> dict[str, Any]:
    """A new coupon of ``campaign_id`` for the member (the survivor of a merge), within the
    campaign's dates, its cap and its per-member limit (409 saying which)."""
    item = campaign(session, campaign_id, lock=True)  # one issue of a campaign at a time
    if not item.active:
        raise Conflict(f"campaign {campaign_id} is withdrawn", code="campaign_inactive")
    if item.public_code is not None:
        raise Conflict(
            f"campaign {campaign_id} has a public code: it is typed at checkout, not issued",
            code="campaign_public",
            details={"public_code": item.public_code},
        )
    if now >= item.valid_until:
        raise Conflict(
            f"campaign {campaign_id} ended",
            code="campaign_ended",
            details={"ended": item.valid_until.isoformat()},
        )
    member = lock_member(session, member_id)
    held = (
        session.scalar(
            select(func.count())
            .select_from(Coupon)
            .where(Coupon.campaign_id == campaign_id, Coupon.member_id == member.id)
        )
        or 0
    )
    if held >= item.per_member_limit:
        raise Conflict(
            f"the member holds {held} coupons of this campaign, its limit",
            code="coupon_member_limit",
            details={"limit": item.per_member_limit, "held": held},
        )
    if item.cap is not None:
        issued = (
            session.scalar(
                select(func.count()).select_from(Coupon).where(Coupon.campaign_id == campaign_id)
            )
            or 0
        )
        if issued >= item.cap:
            raise Conflict(
                f"campaign {campaign_id} has issued all its {item.cap} coupons",
                code="coupon_cap_reached",
                details={"cap": item.cap},
            )
    coupon_id = coupon_codes.new_coupon_id()
    coupon = Coupon(
        id=coupon_id,
        campaign_id=campaign_id,
        member_id=member.id,
        code=coupon_codes.sign(
            issuer.key,
            coupon_id=coupon_id,
            campaign_number=item.number,
            member_id=member.id,
            valid_from=item.valid_from,
            valid_until=item.valid_until,
        ),
        status="issued",
        issued_via=via,
        issued_by=store_id,
        issued_at=now,
    )
    session.add(coupon)
    session.flush()
    return coupon_dict(coupon, item)


def find(session: Session, coupon_id: str) -> dict[str, Any]:
    """The coupon a typed id names (any form of it)."""
    coupon = session.get(Coupon, coupon_codes.normalise(coupon_id))
    if coupon is None:
        raise NotFound("no coupon has this id", code="unknown_coupon")
    return coupon_dict(coupon, campaign(session, coupon.campaign_id))


def member_coupons(session: Session, member_id: str) -> list[dict[str, Any]]:
    """The coupons of the member (the survivor of a merge, and those of the members merged
    into them), newest first."""
    survivor = survivor_id(session, member_id)
    merged = session.execute(select(Member.id).where(Member.merged_into == survivor)).scalars()
    ids = [survivor, *merged]
    rows = session.execute(
        select(Coupon).where(Coupon.member_id.in_(ids)).order_by(Coupon.issued_at.desc())
    ).scalars()
    items: dict[str, CampaignItem] = {}
    out = []
    for coupon in rows:
        if coupon.campaign_id not in items:
            items[coupon.campaign_id] = campaign(session, coupon.campaign_id)
        out.append(coupon_dict(coupon, items[coupon.campaign_id]))
    return out


# -- reservations ----------------------------------------------------------------------------


def _spent(session: Session, campaign_id: str, *, now: datetime, besides: str) -> int:
    """What the campaign's coupons took off, with the live reservations of its other coupons."""
    redeemed = session.scalar(
        select(func.coalesce(func.sum(CouponRedemption.amount), 0)).where(
            CouponRedemption.campaign_id == campaign_id, CouponRedemption.restored_by.is_(None)
        )
    )
    reserved = session.scalar(
        select(func.coalesce(func.sum(CouponReservation.amount), 0)).where(
            CouponReservation.campaign_id == campaign_id,
            CouponReservation.status == "live",
            CouponReservation.expires_at > now,
            CouponReservation.coupon_id != besides,
        )
    )
    return int(redeemed or 0) + int(reserved or 0)


def reserve(
    session: Session,
    store_id: str,
    coupon_id: str,
    *,
    reservation_id: str,
    member_id: str | None,
    amount: int,
    ttl: timedelta,
    now: datetime,
) -> dict[str, Any]:
    """Set the coupon aside for a cart of ``store_id`` (the same ``reservation_id`` again
    answers the first reservation, refreshed with ``amount``). 409 ``coupon_used``,
    ``coupon_reserved`` (another cart holds it), ``coupon_not_eligible`` (another member's),
    ``coupon_budget_reached``."""
    coupon = session.execute(
        select(Coupon).where(Coupon.id == coupon_id).with_for_update()
    ).scalar_one_or_none()
    if coupon is None:
        raise NotFound("no coupon has this id", code="unknown_coupon")
    mine = session.get(CouponReservation, reservation_id)
    if mine is not None and (mine.coupon_id != coupon_id or mine.store_id != store_id):
        raise Forbidden("this reservation is another coupon's", code="wrong_reservation")
    if coupon.status == "redeemed":
        raise Conflict("this coupon was used already", code="coupon_used")
    if member_id is not None and survivor_id(session, coupon.member_id) != survivor_id(
        session, member_id
    ):
        raise Conflict(
            "this coupon is another member's",
            code="coupon_not_eligible",
            details={"reason": "other_member"},
        )
    other = session.execute(
        select(CouponReservation).where(
            CouponReservation.coupon_id == coupon_id,
            CouponReservation.status == "live",
            CouponReservation.expires_at > now,
            CouponReservation.id != reservation_id,
        )
    ).scalar()
    if other is not None:
        raise Conflict(
            "this coupon is on another cart",
            code="coupon_reserved",
            details={"until": other.expires_at.isoformat()},
        )
    item = campaign(session, coupon.campaign_id)
    if item.budget is not None:
        spent = _spent(session, coupon.campaign_id, now=now, besides=coupon_id)
        if spent + amount > item.budget:
            raise Conflict(
                f"campaign {item.id} has spent its budget",
                code="coupon_budget_reached",
                details={"budget": item.budget, "spent": spent, "asked": amount},
            )
    if mine is None:
        mine = CouponReservation(
            id=reservation_id,
            coupon_id=coupon_id,
            campaign_id=coupon.campaign_id,
            store_id=store_id,
            amount=amount,
            status="live",
            expires_at=now + ttl,
            created_at=now,
        )
        session.add(mine)
    elif mine.status == "live":
        mine.amount, mine.expires_at = amount, now + ttl
    else:
        raise Conflict(f"reservation {reservation_id} is {mine.status}", code="coupon_reserved")
    session.flush()
    return {
        "reservation_id": mine.id,
        "coupon_id": coupon_id,
        "expires_at": mine.expires_at.isoformat(),
    }


def release(session: Session, store_id: str, reservation_id: str) -> bool:
    """Give a live reservation of ``store_id`` back; False when there is none."""
    mine = session.get(CouponReservation, reservation_id)
    if mine is None or mine.status != "live":
        return False
    if mine.store_id != store_id:
        raise Forbidden("this reservation is another store's", code="wrong_store")
    mine.status = "released"
    return True


# -- public codes: each store's quota -----------------------------------------------------


def grants(cap: int, stores: Iterable[str], held: Mapping[str, tuple[int, int]]) -> dict[str, int]:
    """The quotas that change when a public campaign is rebalanced: ``{store: new quota}``.
    ``held``: each store's ``(quota, used)`` so far; ``stores``: the chain's stores now.

    * A store with no quota yet gets an even share of half the cap (``cap // (2 x stores)``,
      at least one while the cap lasts; zero when it is spent).
    * A store that has used three quarters of its quota or more gets half of what is left of
      the cap, split between such stores (at least one each while it lasts).
    * A quota never goes down: a store offline may have accepted all of it. So the quotas never
      add up to more than the cap, and a store never has to refuse what it was promised.
    """
    everyone = sorted(set(stores) | set(held))
    left = cap - sum(quota for quota, _ in held.values())
    changed: dict[str, int] = {}
    first = max(1, cap // (2 * max(1, len(everyone))))
    for store in everyone:
        if store not in held:
            changed[store] = max(0, min(first, left))
            left -= changed[store]
    hungry = [s for s in sorted(held) if held[s][0] - held[s][1] <= held[s][0] // 4]
    if hungry and left > 0:
        share = max(1, left // (2 * len(hungry)))
        for store in hungry:
            give = min(share, left)
            if give <= 0:
                break
            changed[store] = held[store][0] + give
            left -= give
    return changed


def _used_by_store(session: Session, campaign_id: str) -> dict[str, int]:
    return {
        store: int(n)
        for store, n in session.execute(
            select(CouponRedemption.store_id, func.count())
            .where(
                CouponRedemption.campaign_id == campaign_id,
                CouponRedemption.restored_by.is_(None),
            )
            .group_by(CouponRedemption.store_id)
        ).all()
    }


def _trading_stores(session: Session) -> list[str]:
    """The chain's stores, enrolled yet or not (HQ adds them all before they enroll one by
    one: each gets an even share of the same half); a revoked store gets no more."""
    return list(session.execute(select(Store.id).where(Store.revoked_at.is_(None))).scalars())


def rebalance(session: Session, campaign_id: str, *, now: datetime) -> dict[str, int]:
    """Hand out more of a public campaign's cap (:func:`grants`), in the caller's transaction;
    each store pulls its new quota. Answers the quotas that changed."""
    item = campaign(session, campaign_id, lock=True)  # one rebalance of a campaign at a time
    if item.public_code is None or item.cap is None or not item.active:
        return {}
    rows = {
        row.store_id: row
        for row in session.execute(
            select(CouponQuota).where(CouponQuota.campaign_id == campaign_id)
        ).scalars()
    }
    used = _used_by_store(session, campaign_id)
    changed = grants(
        item.cap,
        _trading_stores(session),
        {store: (row.quota, used.get(store, 0)) for store, row in rows.items()},
    )
    for store, quota in changed.items():
        row = rows.get(store)
        if row is None:
            session.add(
                CouponQuota(campaign_id=campaign_id, store_id=store, quota=quota, updated_at=now)
            )
        else:
            row.quota, row.updated_at = quota, now
    record_changes(
        session, [(FEED_COUPON_QUOTAS, campaign_id, store) for store in sorted(changed)], now=now
    )
    session.flush()
    return changed


def _quotas_for_new_store(session: Session, store_id: str) -> None:
    """A store enrolled: it gets its share of every running public campaign (a store HQ
    added after the campaign started had none)."""
    store = session.get(Store, store_id)
    now = None if store is None else store.enrolled_at
    if now is None:
        return
    for item in list_campaigns(session, active_only=True):
        if item.public_code is not None:
            rebalance(session, item.id, now=now)


on_enrolled(_quotas_for_new_store)


def quotas(session: Session, campaign_id: str) -> dict[str, Any]:
    """A public campaign's quotas by store, with what each has used (as far as the cloud has
    heard) and the part of the cap not handed out yet."""
    item = campaign(session, campaign_id)
    used = _used_by_store(session, campaign_id)
    rows = session.execute(
        select(CouponQuota)
        .where(CouponQuota.campaign_id == campaign_id)
        .order_by(CouponQuota.store_id)
    ).scalars()
    out = [QuotaOut(store_id=r.store_id, quota=r.quota, used=used.get(r.store_id, 0)) for r in rows]
    return {
        "campaign_id": campaign_id,
        "public_code": item.public_code,
        "cap": item.cap,
        "unallocated": (item.cap or 0) - sum(q.quota for q in out),
        "quotas": [q.model_dump() for q in out],
    }


def quota_items(
    session: Session, store_id: str, keys: Sequence[str]
) -> list[tuple[str, CouponQuotaItem]]:
    """The store's quotas of the campaigns ``keys``, as its feed carries them."""
    rows = {
        r.campaign_id: r
        for r in session.execute(
            select(CouponQuota).where(
                CouponQuota.store_id == store_id, CouponQuota.campaign_id.in_(keys)
            )
        ).scalars()
    }
    return [
        (
            k,
            CouponQuotaItem(
                campaign_id=k, quota=rows[k].quota, updated_at=rows[k].updated_at.isoformat()
            ),
        )
        for k in keys
        if k in rows
    ]


def quota_ids_after(
    session: Session, store_id: str, after: str, limit: int
) -> tuple[list[str], bool]:
    found = list(
        session.execute(
            select(CouponQuota.campaign_id)
            .where(CouponQuota.store_id == store_id, CouponQuota.campaign_id > after)
            .order_by(CouponQuota.campaign_id)
            .limit(limit + 1)
        ).scalars()
    )
    return found[:limit], len(found) > limit


# -- what sales and returns do ---------------------------------------------------------------


@dataclass(frozen=True)
class SaleCoupons:
    store_id: str
    sale_id: str
    currency: str
    coupons: tuple[SaleCoupon, ...]
    at: datetime


@dataclass(frozen=True)
class ReturnCoupons:
    store_id: str
    return_id: str
    sale_id: str
    coupon_ids: tuple[str, ...]


CouponEffect = SaleCoupons | ReturnCoupons


def apply_all(session: Session, effects: Sequence[CouponEffect], *, now: datetime) -> None:
    """Apply events' coupon parts in order, in the caller's transaction; each is idempotent."""
    touched: set[str] = set()
    for effect in effects:
        if isinstance(effect, SaleCoupons):
            for used in effect.coupons:
                _redeem(session, effect, used, now=now)
                touched.add(used.campaign_id)
        else:
            _restore(session, effect)
    session.flush()
    # A store that used most of its quota of a public code gets more (it pulls it).
    for campaign_id, item in campaign_items(session, sorted(touched)):
        if item.public_code is not None:
            rebalance(session, campaign_id, now=now)


def _redeem(session: Session, sale: SaleCoupons, used: SaleCoupon, *, now: datetime) -> None:
    known = session.execute(
        select(CouponRedemption.id).where(
            CouponRedemption.coupon_id == used.coupon_id, CouponRedemption.sale_id == sale.sale_id
        )
    ).first()
    if known is not None:
        return  # the event again
    coupon = session.execute(
        select(Coupon).where(Coupon.id == used.coupon_id).with_for_update()
    ).scalar_one_or_none()
    earlier = list(
        session.execute(
            select(CouponRedemption).where(
                CouponRedemption.coupon_id == used.coupon_id,
                CouponRedemption.restored_by.is_(None),
            )
        ).scalars()
    )
    session.add(
        CouponRedemption(
            coupon_id=used.coupon_id,
            campaign_id=used.campaign_id,
            store_id=sale.store_id,
            sale_id=sale.sale_id,
            amount=used.amount,
            reservation_id=used.reservation_id,
            at=sale.at,
        )
    )
    if used.reservation_id is not None:
        reservation = session.get(CouponReservation, used.reservation_id)
        if reservation is not None:
            reservation.status = "used"
    if coupon is not None:
        coupon.status = "redeemed"
    if earlier and used.amount > 0:
        first = earlier[0]
        raise_exception(
            session,
            kind="coupon_double_use",
            store_id=sale.store_id,
            subject_id=used.coupon_id,
            amount=used.amount,
            unit=sale.currency,
            origin_id=f"{sale.sale_id}:{used.coupon_id}",
            details={
                "coupon_id": used.coupon_id,
                "campaign_id": used.campaign_id,
                "member_id": None if coupon is None else coupon.member_id,
                "sale_id": sale.sale_id,
                "offline": used.reservation_id is None,
                "first_use": {
                    "store_id": first.store_id,
                    "sale_id": first.sale_id,
                    "amount": first.amount,
                    "at": first.at.isoformat(),
                },
            },
            now=now,
        )


def _restore(session: Session, back: ReturnCoupons) -> None:
    for coupon_id in back.coupon_ids:
        redemption = session.execute(
            select(CouponRedemption).where(
                CouponRedemption.coupon_id == coupon_id,
                CouponRedemption.sale_id == back.sale_id,
                CouponRedemption.restored_by.is_(None),
            )
        ).scalar()
        if redemption is None:
            continue  # given back already (the event again), or never redeemed here
        redemption.restored_by = back.return_id
        session.flush()
        still_used = session.execute(
            select(CouponRedemption.id).where(
                CouponRedemption.coupon_id == coupon_id, CouponRedemption.restored_by.is_(None)
            )
        ).first()
        coupon = session.get(Coupon, coupon_id)
        if coupon is not None and still_used is None:
            coupon.status = "issued"
