"""HQ's promotions: written whole (one or many at once, from the API or a file), read back, and
served to stores by the ``promotions`` feed (the feed's key is the promotion's id)."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Any

from pydantic import TypeAdapter
from sqlalchemy import select
from sqlalchemy.orm import Session

from cloud.authoring import checked as check_items
from cloud.authoring import read_list
from cloud.changes.log import record_changes
from cloud.errors import Unprocessable
from cloud.promotions.models import Promotion
from sync.contract import FEED_PROMOTIONS, PromotionItem

#: The most promotions one write carries.
MAX_PER_WRITE = 2_000
_ITEMS = TypeAdapter(list[PromotionItem])


def read_file(name: str, data: bytes) -> list[PromotionItem]:
    """The promotions of a JSON or TOML file: ``{"promotions": [...]}`` (TOML:
    ``[[promotions]]`` tables), or, in JSON, the list alone. ``ValueError`` saying what is
    wrong and where."""
    return checked(read_list(name, data, "promotions"))


def checked(doc: list[Any]) -> list[PromotionItem]:
    """Promotions as HQ wrote them, each checked by the rules of its kind; ``Unprocessable``
    naming the first that is wrong."""
    return check_items(_ITEMS, doc, noun="promotion", most=MAX_PER_WRITE)


def put_promotions(
    session: Session, items: Sequence[PromotionItem], *, now: datetime
) -> list[PromotionItem]:
    """Write ``items`` (each replaces the promotion of its id), in the caller's transaction;
    every store pulls them. An id named twice is refused: which one was meant?"""
    ids = [item.id for item in items]
    if len(set(ids)) != len(ids):
        twice = sorted({i for i in ids if ids.count(i) > 1})
        raise Unprocessable(
            "a promotion id appears twice in one write",
            code="duplicate_promotion",
            details={"ids": twice[:20]},
        )
    stamped = [item.model_copy(update={"updated_at": now.isoformat()}) for item in items]
    rows = {
        row.id: row
        for row in session.execute(
            select(Promotion).where(Promotion.id.in_([i.id for i in stamped]))
        ).scalars()
    }
    for item in stamped:
        row = rows.get(item.id)
        doc = item.model_dump_json()
        if row is None:
            session.add(Promotion(id=item.id, doc=doc, active=item.active, updated_at=now))
        else:
            row.doc, row.active, row.updated_at = doc, item.active, now
    record_changes(session, [(FEED_PROMOTIONS, item.id, None) for item in stamped], now=now)
    return stamped


def list_promotions(session: Session, *, active_only: bool = False) -> list[PromotionItem]:
    """Every promotion in id order (the withdrawn ones too unless ``active_only``)."""
    query = select(Promotion.doc).order_by(Promotion.id)
    if active_only:
        query = query.where(Promotion.active.is_(True))
    return [PromotionItem.model_validate_json(doc) for doc in session.execute(query).scalars()]


def promotion_items(session: Session, keys: Sequence[str]) -> list[tuple[str, PromotionItem]]:
    """The promotions of ``keys`` as the feed carries them, in the keys' order."""
    docs = dict(
        session.execute(select(Promotion.id, Promotion.doc).where(Promotion.id.in_(keys))).all()
    )
    return [(k, PromotionItem.model_validate_json(docs[k])) for k in keys if k in docs]


def promotion_ids_after(session: Session, after: str, limit: int) -> tuple[list[str], bool]:
    """A snapshot's page of promotion ids after ``after`` and whether more follow."""
    found = list(
        session.execute(
            select(Promotion.id).where(Promotion.id > after).order_by(Promotion.id).limit(limit + 1)
        ).scalars()
    )
    return found[:limit], len(found) > limit
