"""HQ's reports over members: per-employee accounting of who recruited whom.

**Recruitment.** For the members who signed up in a period: per store and recruiter, how many
and what they spent in their first :data:`WINDOW_DAYS` days. The recruiter is the staff member
signed in at the sign-up (``recruited_by``), else the device it was made on, else, for a member
who signed up online, the channel. Read from the members and the points ledger alone:

* **Spend** is the sum of the member's ``earn`` entries: every sale of a member writes one, with
  0 points when it earned none (:mod:`cloud.members.effects`), and so does every order of a
  channel. A sale counts when it was made in the window (the sale's own time) and counts net of
  what returns of it refunded, whenever they came (its ``earn_reversal`` entries' spend).
* **A phone signed up twice** (two stores offline) is one member: the ledger re-points the
  folded member's entries to the survivor, and the sign-up credited is the earliest of the two
  (the survivor is the one the cloud learned of first, which may be the later one); its time
  starts the window.
* Days are UTC days; the period's ``to`` is included.

One statement: the members ranked within their fold, the first of each in the period, joined
to their sales and grouped. The members' sign-up times are scanned up to the period's end.
"""

from __future__ import annotations

import re
from datetime import UTC, date, datetime, time, timedelta
from typing import Any

from sqlalchemy import DateTime, and_, case, func, literal, select
from sqlalchemy.ext.compiler import compiles
from sqlalchemy.sql.compiler import SQLCompiler
from sqlalchemy.sql.functions import FunctionElement

from cloud.db import Database
from cloud.errors import Unprocessable
from cloud.members.models import Member, PointsEntry

#: How long after sign-up a recruit's spend counts.
WINDOW_DAYS = 90
#: The longest period one report covers.
MAX_PERIOD_DAYS = 366


class plus_days(FunctionElement[datetime]):
    """``when`` plus a whole number of days, in SQL: PostgreSQL adds an interval; SQLite, which
    stores times as ``YYYY-MM-DD HH:MM:SS.ffffff`` text, writes the sum in the same form (to the
    millisecond), so the two compare as text."""

    type = DateTime()
    inherit_cache = True
    name = "plus_days"


@compiles(plus_days, "postgresql")
def _plus_days_postgresql(element: plus_days, compiler: SQLCompiler, **kw: Any) -> str:
    when, days = list(element.clauses)
    return (
        f"({compiler.process(when, **kw)} + make_interval(days => {compiler.process(days, **kw)}))"
    )


@compiles(plus_days, "sqlite")
def _plus_days_sqlite(element: plus_days, compiler: SQLCompiler, **kw: Any) -> str:
    when, days = list(element.clauses)
    shift = f"'+' || {compiler.process(days, **kw)} || ' days'"
    return f"strftime('%Y-%m-%d %H:%M:%f', {compiler.process(when, **kw)}, {shift})"


_DAY = re.compile(r"\d{4}-\d{2}-\d{2}")


def _day(text: str | None, name: str) -> date:
    if not text:
        raise Unprocessable(f"{name} is required (YYYY-MM-DD)", details={"field": name})
    try:
        if _DAY.fullmatch(text) is None:
            raise ValueError(text)
        return date.fromisoformat(text)
    except ValueError:
        raise Unprocessable(
            f"{name} must be a day as YYYY-MM-DD", code="bad_date", details={"field": name}
        ) from None


def period(start: str | None, end: str | None) -> tuple[date, date]:
    """The period ``start`` to ``end`` (``YYYY-MM-DD``, both included): 422 ``bad_date`` for
    a day that is not one, ``bad_period`` for an end before the start or a period longer than
    :data:`MAX_PERIOD_DAYS`."""
    first, last = _day(start, "from"), _day(end, "to")
    if last < first or (last - first).days >= MAX_PERIOD_DAYS:
        raise Unprocessable(
            f"the period runs from a day to the same or a later one, {MAX_PERIOD_DAYS} days "
            "at most",
            code="bad_period",
            details={"from": first.isoformat(), "to": last.isoformat()},
        )
    return first, last


def _utc_day(day: date) -> datetime:
    return datetime.combine(day, time(), tzinfo=UTC)


def recruitment(db: Database, *, start: date, end: date, store_id: str | None) -> dict[str, Any]:
    """Per store and recruiter, the members who signed up from ``start`` to ``end`` (both
    included; only those of ``store_id`` when given) and their spend in their first
    :data:`WINDOW_DAYS` days, net of returns (minor units)."""
    since, until = _utc_day(start), _utc_day(end + timedelta(days=1))
    fold = func.coalesce(Member.merged_into, Member.id)
    ranked = (
        select(
            Member.id,
            fold.label("survivor"),
            Member.store_id,
            Member.recruited_by,
            Member.device_id,
            Member.channel,
            Member.created_at,
            func.row_number()
            .over(partition_by=fold, order_by=(Member.created_at, Member.id))
            .label("rank"),
        )
        # A fold's first sign-up is before the period's end when any of its sign-ups is.
        .where(Member.created_at < until)
        .subquery("ranked")
    )
    recruits = select(ranked).where(ranked.c.rank == 1, ranked.c.created_at >= since)
    if store_id is not None:
        recruits = recruits.where(ranked.c.store_id == store_id)
    recruit = recruits.subquery("recruit")

    reversal = PointsEntry.__table__.alias("reversal")
    bought = PointsEntry.__table__.alias("bought")
    refunded = (
        select(func.coalesce(func.sum(reversal.c.spend), 0))
        .where(reversal.c.kind == "earn_reversal", reversal.c.about_id == bought.c.origin_id)
        .scalar_subquery()
    )
    kind = case(
        (recruit.c.recruited_by.is_not(None), literal("staff")),
        (recruit.c.device_id.is_not(None), literal("device")),
        else_=literal("channel"),
    ).label("kind")
    recruiter = func.coalesce(recruit.c.recruited_by, recruit.c.device_id, recruit.c.channel).label(
        "recruiter"
    )
    spend = func.coalesce(func.sum(bought.c.spend + refunded), 0).label("spend")
    query = (
        select(
            recruit.c.store_id,
            kind,
            recruiter,
            func.count(func.distinct(recruit.c.id)).label("members"),
            spend,
        )
        .select_from(
            recruit.outerjoin(
                bought,
                and_(
                    bought.c.member_id == recruit.c.survivor,
                    bought.c.kind == "earn",
                    bought.c.created_at >= recruit.c.created_at,
                    bought.c.created_at < plus_days(recruit.c.created_at, WINDOW_DAYS),
                ),
            )
        )
        .group_by(recruit.c.store_id, kind, recruiter)
        .order_by(recruit.c.store_id.is_(None), recruit.c.store_id, kind, recruiter)
    )
    with db.read() as session:
        rows = session.execute(query).all()
    return {
        "from": start.isoformat(),
        "to": end.isoformat(),
        "store": store_id,
        "window_days": WINDOW_DAYS,
        "recruiters": [
            {
                "store_id": row.store_id,
                "recruiter": {"kind": row.kind, "id": row.recruiter},
                "members": int(row.members),
                "spend": int(row.spend),
            }
            for row in rows
        ],
    }
