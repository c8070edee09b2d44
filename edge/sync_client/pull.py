"""Pulling the cloud's feeds: each page applied in one transaction with its cursor."""

from __future__ import annotations

import json
import logging
from collections.abc import Callable, Iterable
from datetime import datetime
from typing import Any

from pydantic import ValidationError
from sqlalchemy.exc import DataError, IntegrityError
from sqlalchemy.orm import Session

from edge.catalog.service import apply_catalog_items, apply_price_items
from edge.coupons.service import apply_campaign_items, apply_quota_items
from edge.db import Database
from edge.members.earning import EARN_RULES_KEY
from edge.members.service import apply_member_merges
from edge.pricing.store_promotions import apply_promotion_items
from edge.sync_client.models import FeedCursor, StoreSetting
from edge.sync_client.state import mark_healthy, sync_state
from edge.sync_client.transport import CloudClient, CloudUnavailable
from shared.faults import fault_point
from sync.contract import (
    FEED_ITEMS,
    FEEDS,
    CampaignItem,
    CatalogItem,
    CouponQuotaItem,
    EarnRulesItem,
    FeedItem,
    MemberMergeItem,
    PriceItem,
    PromotionItem,
    StoreSettingsItem,
)
from sync.protocol import PullPage

#: Pages of one feed pulled in one run; the next run continues from the cursor.
MAX_PAGES_PER_RUN = 50

log = logging.getLogger(__name__)

# --- pull -----------------------------------------------------------------------------------


def _cursor(session: Session, feed: str) -> FeedCursor | None:
    return session.get(FeedCursor, feed)


def pull_feed(
    db: Database, client: CloudClient, feed: str, *, now: datetime, limit: int = 500
) -> int:
    """Pull ``feed`` until the cloud has no more; returns the number of changes applied."""
    applied = 0
    for _ in range(MAX_PAGES_PER_RUN):
        with db.read() as session:
            row = _cursor(session, feed)
            cursor = row.cursor if row else None
        page = client.pull(feed, cursor=cursor, limit=limit, now=now)
        apply_page(db, page, previous_cursor=cursor, now=now)
        applied += len(page.changes)
        if not page.has_more:
            break
    return applied


class BadFeedPage(CloudUnavailable):
    """A page this store cannot apply: nothing of it is applied, the cursor stays, the status
    shows why, and the pull is tried again after the backoff (a cloud put right, or a newer
    store, takes it)."""

    def __init__(self, feed: str, problem: str) -> None:
        super().__init__(
            f"the {feed} feed sent a page this store cannot apply: {problem}", code="bad_feed_page"
        )


def _items(page: PullPage) -> list[FeedItem]:
    """Every item of the page as its feed's type, or :class:`BadFeedPage` naming the first bad
    one: a page is applied whole or not at all."""
    model = FEED_ITEMS.get(page.feed)
    if model is None:
        raise BadFeedPage(page.feed, "this store does not know the feed")
    items = []
    for change in page.changes:
        if not isinstance(change.data, dict):
            raise BadFeedPage(page.feed, f"item {change.key!r} is not an object")
        try:
            items.append(model.model_validate(change.data))
        except ValidationError as exc:
            problems = "; ".join(
                f"{'.'.join(str(p) for p in err['loc'])}: {err['msg']}"
                for err in exc.errors(include_url=False, include_input=False)[:3]
            )
            raise BadFeedPage(page.feed, f"item {change.key!r}: {problems}") from None
    return items


def apply_page(db: Database, page: PullPage, *, previous_cursor: str | None, now: datetime) -> None:
    """Apply one page and move the feed's cursor, in one transaction; a page that cannot be
    applied whole raises :class:`BadFeedPage` and changes nothing."""
    items = _items(page)
    try:
        _apply_checked(db, page, items, previous_cursor=previous_cursor, now=now)
    except (IntegrityError, DataError, ValueError, KeyError, TypeError) as exc:
        raise BadFeedPage(page.feed, f"{type(exc).__name__}: {exc}"[:300]) from None


def _apply_checked(
    db: Database,
    page: PullPage,
    items: list[FeedItem],
    *,
    previous_cursor: str | None,
    now: datetime,
) -> None:
    with db.write() as uow:
        session = uow.session
        row = _cursor(session, page.feed)
        if (row.cursor if row else None) != previous_cursor:
            # Another process applied a page meanwhile; this one would move the cursor back.
            return
        for item_type, apply in _APPLIERS.items():
            apply(session, [i for i in items if type(i) is item_type], now)
        fault_point("edge.pull.mid_apply")
        if row is None:
            row = FeedCursor(feed=page.feed, cursor="", changes_applied=0, updated_at=now)
            session.add(row)
        row.cursor = page.next_cursor
        row.in_snapshot = page.snapshot
        if page.snapshot_reason is not None:
            log.info("feed %s: the cloud sends a snapshot (%s)", page.feed, page.snapshot_reason)
            row.last_snapshot_reason, row.last_snapshot_at = page.snapshot_reason, now
        row.changes_applied = (row.changes_applied or 0) + len(page.changes)
        row.updated_at = now
        state = sync_state(session)
        state.last_pull_at = now
        mark_healthy(state, now, pushed=False)
        uow.commit()


def _apply_store_settings(
    session: Session, items: Iterable[StoreSettingsItem], now: datetime
) -> None:
    for item in items:
        for key, value in item.to_dict().items():
            session.merge(StoreSetting(key=key, value=json.dumps(value), updated_at=now))


def _apply_earn_rules(session: Session, items: Iterable[EarnRulesItem], now: datetime) -> None:
    for item in items:  # the chain's one document, kept whole: the checkout reads it
        session.merge(
            StoreSetting(key=EARN_RULES_KEY, value=item.model_dump_json(), updated_at=now)
        )


#: What applies each feed's items at this store: the feature that owns the table.
_APPLIERS: dict[type[FeedItem], Callable[[Session, Any, datetime], None]] = {
    CatalogItem: apply_catalog_items,
    PriceItem: apply_price_items,
    StoreSettingsItem: _apply_store_settings,
    MemberMergeItem: apply_member_merges,
    EarnRulesItem: _apply_earn_rules,
    PromotionItem: apply_promotion_items,
    CampaignItem: apply_campaign_items,
    CouponQuotaItem: apply_quota_items,
}


def pull_all(db: Database, client: CloudClient, *, now: datetime) -> dict[str, int]:
    return {feed: pull_feed(db, client, feed, now=now) for feed in FEEDS}
