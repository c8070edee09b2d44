"""The chain's earn rules and the members' tiers.

HQ sets the rules (``PUT /api/v1/earn-rules``, :class:`sync.contract.EarnRulesItem`); every store
pulls them by the ``earn_rules`` feed and earns by them at the checkout. Until HQ sets any, the
rules are the contract's defaults (a point per 100 minor units, one tier).

**Tiers** come from the rolling twelve-month spend: what the member's sales and orders of the
last 365 days cost, less what was refunded of them (the ledger's earn entries carry the spend,
its earn reversals the refunded part). A member's tier is the highest whose ``min_spend`` that
spend reaches. It is recomputed whenever the member earns or returns, and daily for every member
above the first tier (``aisle cloud members expire-points``): the downgrade rule is that a tier
lasts while the last twelve months' spend still reaches it, and no longer; a member moves down
at the first recomputation after their spend falls below it.
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import datetime, timedelta
from functools import lru_cache

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from cloud.changes.log import record_changes
from cloud.members import ledger
from cloud.members.models import EarnRules, Member, PointsEntry
from sync.contract import FEED_EARN_RULES, EarnRulesItem

#: How far back a tier's spend counts.
TIER_WINDOW = timedelta(days=365)
#: The earn rules feed's one key.
RULES_KEY = "chain"


@lru_cache(maxsize=4)
def _parsed(doc: str) -> EarnRulesItem:
    return EarnRulesItem.model_validate_json(doc)


def current_rules(session: Session) -> EarnRulesItem:
    """The chain's earn rules (the defaults until HQ sets any); each document is parsed once
    per process, as every member sale a store pushes reads them."""
    doc = session.execute(select(EarnRules.doc).where(EarnRules.id == 1)).scalar_one_or_none()
    return EarnRulesItem() if doc is None else _parsed(doc)


def set_rules(session: Session, rules: EarnRulesItem, *, now: datetime) -> EarnRulesItem:
    """HQ's new rules, in the caller's transaction; the stores pull them."""
    stamped = rules.model_copy(update={"updated_at": now.isoformat()})
    row = session.get(EarnRules, 1)
    if row is None:
        session.add(EarnRules(id=1, doc=stamped.model_dump_json(), updated_at=now))
    else:
        row.doc, row.updated_at = stamped.model_dump_json(), now
    record_changes(session, [(FEED_EARN_RULES, RULES_KEY, None)], now=now)
    return stamped


def retier(
    session: Session, member_id: str, *, now: datetime, rules: EarnRulesItem | None = None
) -> str:
    """Set the (surviving) member's tier from their rolling spend; returns it."""
    return retier_many(session, [member_id], now=now, rules=rules)[member_id]


def retier_many(
    session: Session,
    member_ids: Iterable[str],
    *,
    now: datetime,
    rules: EarnRulesItem | None = None,
) -> dict[str, str]:
    """:func:`retier` of each of ``member_ids`` (a batch's members), in three statements for
    members not merged away; answers each id's tier (its survivor's)."""
    named = list(dict.fromkeys(member_ids))
    if not named:
        return {}
    rules = rules or current_rules(session)
    members = {
        str(m.id): m for m in session.execute(select(Member).where(Member.id.in_(named))).scalars()
    }
    survivors = {
        m: m if m in members and members[m].merged_into is None else ledger.survivor_id(session, m)
        for m in named
    }
    for survivor in set(survivors.values()) - members.keys():
        members[survivor] = session.get_one(Member, survivor)
    counted = set(survivors.values())
    spend = dict(
        session.execute(
            select(PointsEntry.member_id, func.coalesce(func.sum(PointsEntry.spend), 0))
            .where(
                PointsEntry.member_id.in_(counted),
                PointsEntry.kind.in_(("earn", "earn_reversal")),
                PointsEntry.created_at > now - TIER_WINDOW,
            )
            .group_by(PointsEntry.member_id)
        ).all()
    )
    tiers = {}
    for survivor in counted:
        member = members[survivor]
        tiers[survivor] = tier = rules.tier_for(int(spend.get(survivor, 0)))
        if member.tier != tier:
            member.tier = tier
            member.updated_at = now
    return {m: tiers[survivors[m]] for m in named}


def retier_above_base(
    session: Session, *, now: datetime, after_id: str = "", limit: int = 500
) -> list[str]:
    """Recompute the tier of a page of members above the first tier (the daily downgrade);
    returns the ids seen, in order, for the next page."""
    rules = current_rules(session)
    query = select(Member.id).where(Member.tier != rules.tiers[0].name, Member.status == "active")
    if after_id:
        query = query.where(Member.id > after_id)
    ids = [str(i) for i in session.execute(query.order_by(Member.id).limit(limit)).scalars()]
    retier_many(session, ids, now=now, rules=rules)
    return ids
