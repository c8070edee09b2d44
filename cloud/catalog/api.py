"""``GET /api/v1/sync/pull``: a page of a feed for the signing store, signed by the cloud."""

from __future__ import annotations

from typing import Any

from flask import Blueprint, request

from cloud.catalog.feeds import read_page
from cloud.errors import Unprocessable
from cloud.web import ctx, int_arg, signed_store
from sync.protocol import DEFAULT_PULL_LIMIT

api = Blueprint("feeds", __name__, url_prefix="/api/v1")


@api.get("/sync/pull")
def sync_pull() -> dict[str, Any]:
    """``{feed, changes, next_cursor, has_more, snapshot}`` after ``cursor``; the answer is
    signed with the cloud's key (headers), bound to the request's nonce."""
    c = ctx()
    caller = signed_store()
    feed = request.args.get("feed")
    if not feed:
        raise Unprocessable("feed is required", details={"field": "feed"})
    limit = int_arg(
        "limit",
        default=min(DEFAULT_PULL_LIMIT, c.settings.sync.max_pull_limit),
        low=1,
        high=c.settings.sync.max_pull_limit,
    )
    page = read_page(
        c.db,
        store_id=caller.store_id,
        feed=feed,
        cursor_text=request.args.get("cursor"),
        limit=limit,
        now=c.clock.now(),
    )
    return page.to_dict()
