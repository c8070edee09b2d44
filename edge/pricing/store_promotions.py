"""The store's promotions: kept as the cloud's ``promotions`` feed carries them, read by every
pricing of a cart, and the offers each sale took.

A cart is priced as of its last change (``updated_at``, on the store's own clock): what the
shopper saw at the last scan is what they pay, even if an offer's hours end before they pay.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any
from zoneinfo import ZoneInfo

from sqlalchemy import delete, select
from sqlalchemy.orm import Session

from edge.db import RawTransaction
from edge.pricing.models import SaleDiscount, StorePromotion
from edge.pricing.promotion_engine import Occasion, PromotionBook
from edge.settings import EdgeSettings
from edge.sync_client.models import StoreSetting
from shared.ids import new_id
from sync.contract import PromotionItem

#: ``store_settings`` key whose value changes (a fresh id) whenever the promotions change.
PROMOTIONS_VERSION_KEY = "promotions_version"
_VERSION = "SELECT value FROM store_settings WHERE key = ?"
_ALL = "SELECT doc FROM promotions ORDER BY id"
_TAKEN = (
    "SELECT promotion_id, SUM(pieces) FROM sale_discounts WHERE member_id = ? "
    "AND promotion_id IN ({}) GROUP BY promotion_id"
)
_TIER = "SELECT tier FROM members WHERE id = ?"
#: Books by version, parsed once per process (a version names one set of promotions for good).
_BOOKS: dict[str, PromotionBook] = {}
_KEEP_BOOKS = 8
NO_PROMOTIONS = PromotionBook(())


@dataclass(frozen=True)
class Shop:
    """Where carts are priced: the store (for offers that name stores) and its clock's zone
    (for offers' dates, weekdays and hours)."""

    store_id: str
    zone: ZoneInfo

    @classmethod
    def of(cls, settings: EdgeSettings) -> Shop:
        return cls(settings.store.id, ZoneInfo(settings.store.timezone))


def book_here(tx: RawTransaction) -> PromotionBook:
    """The promotions this store holds now, indexed (built once per version and process)."""
    row = tx.one(_VERSION, (PROMOTIONS_VERSION_KEY,))
    if row is None:
        return NO_PROMOTIONS
    version = str(row[0])
    book = _BOOKS.get(version)
    if book is None:
        book = PromotionBook(
            PromotionItem.model_validate_json(doc).to_promotion() for (doc,) in tx.all(_ALL)
        )
        if len(_BOOKS) >= _KEEP_BOOKS:
            _BOOKS.pop(next(iter(_BOOKS)))
        _BOOKS[version] = book
    return book


def occasion_of(
    tx: RawTransaction,
    shop: Shop,
    book: PromotionBook,
    *,
    member_id: str | None,
    at: datetime,
) -> Occasion:
    """Who buys, where and when, for pricing a cart: the member's tier, and the pieces they
    already had at each offer with a per-member limit (from this store's sales)."""
    tier = None
    taken: dict[str, int] = {}
    if member_id is not None:
        row = tx.one(_TIER, (member_id,))
        tier = None if row is None else row[0]
        limited = book.limited_ids
        if limited:
            marks = ", ".join("?" * len(limited))
            taken = {
                promotion_id: int(pieces)
                for promotion_id, pieces in tx.all(_TAKEN.format(marks), (member_id, *limited))
            }
    return Occasion(
        store_id=shop.store_id,
        local=at.astimezone(shop.zone),
        member_id=member_id,
        tier=tier,
        taken=taken,
    )


def apply_promotion_items(session: Session, items: Iterable[PromotionItem], now: datetime) -> None:
    """The ``promotions`` feed's items, in the pull's transaction: an active one kept (its
    latest form), a withdrawn one deleted; the version moves so every pricing reads them."""
    changed = False
    for item in items:
        changed = True
        if item.active:
            session.merge(StorePromotion(id=item.id, doc=item.model_dump_json(), updated_at=now))
        else:
            session.execute(delete(StorePromotion).where(StorePromotion.id == item.id))
    if changed:
        session.merge(
            StoreSetting(key=PROMOTIONS_VERSION_KEY, value=json.dumps(new_id()), updated_at=now)
        )


def record_discounts(
    tx: RawTransaction,
    sale_id: str,
    member_id: str | None,
    discounts: Sequence[Mapping[str, Any]],
    pieces: Sequence[int],
) -> None:
    """The offers a sale took (as the sale dict shows them: its own line ids), in the order
    they ran, with the pieces each priced, in the sale's transaction."""
    tx.cur.executemany(
        "INSERT INTO sale_discounts (sale_id, position, promotion_id, name, stage, amount, "
        "pieces, member_id, lines) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
        [
            (
                sale_id,
                n,
                d["promotion_id"],
                d["name"],
                d["stage"],
                d["amount"],
                count,
                member_id,
                json.dumps([[line["line_id"], line["amount"]] for line in d["lines"]]),
            )
            for n, (d, count) in enumerate(zip(discounts, pieces, strict=True), start=1)
        ],
    )


def discounts_of(session: Session, sale_id: str) -> list[dict[str, object]]:
    """A sale's offers as its receipt and its reads show them."""
    rows = session.execute(
        select(SaleDiscount).where(SaleDiscount.sale_id == sale_id).order_by(SaleDiscount.position)
    ).scalars()
    return [
        {
            "promotion_id": row.promotion_id,
            "name": row.name,
            "stage": row.stage,
            "amount": row.amount,
            "lines": [
                {"line_id": line, "amount": amount} for line, amount in json.loads(row.lines)
            ],
        }
        for row in rows
    ]
