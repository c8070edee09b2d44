"""``GET /api/v1/sync/pull``: a page of a feed for the signing store, signed by the cloud."""

from __future__ import annotations

from typing import Any

from flask import request
from pydantic import BaseModel, ConfigDict

from cloud.catalog.feeds import read_page
from cloud.errors import Unprocessable
from cloud.web import CloudApi, QueryParam, ctx, int_arg, whole_number_param
from sync.protocol import DEFAULT_PULL_LIMIT, MAX_PULL_LIMIT

api = CloudApi("feeds")


class FeedChangeOut(BaseModel):
    key: str
    data: dict[str, Any]


class PullOut(BaseModel):
    """A page of a feed (``sync.protocol.PullPage``); a feed may add fields of its own."""

    model_config = ConfigDict(extra="allow")

    feed: str
    changes: list[FeedChangeOut]
    next_cursor: str
    has_more: bool
    snapshot: bool
    snapshot_reason: str | None


@api.route(
    "GET",
    "/sync/pull",
    summary="Read a page of a feed after a cursor",
    caller="store",
    response=PullOut,
    errors=(400, 404, 422),
    query=(
        QueryParam("feed", {"type": "string", "minLength": 1}, "the feed's name", required=True),
        QueryParam("cursor", {"type": "string"}, "where the last page ended (none: the start)"),
        whole_number_param("limit", low=1, high=MAX_PULL_LIMIT, description="changes per page"),
    ),
    description="The answer is signed with the cloud's key (headers), bound to the request's "
    "nonce. Apply the changes and keep next_cursor in one local transaction.",
)
def sync_pull(caller: Any) -> dict[str, Any]:
    """``{feed, changes, next_cursor, has_more, snapshot}`` after ``cursor``; the answer is
    signed with the cloud's key (headers), bound to the request's nonce."""
    c = ctx()
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
