"""HQ's API over members and points: look a member up, read them and their ledger (why every
entry happened), adjust their points with a reason, and list reconciliation exceptions."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from flask import request
from pydantic import BaseModel, Field, ValidationError

from cloud.errors import Unprocessable
from cloud.members import reports, rules, service
from cloud.reconciliation.service import list_exceptions
from cloud.web import CloudApi, QueryParam, RequestBody, ctx, int_arg, whole_number_param
from shared.idempotency import check_key
from shared.text import FREE_TEXT_PATTERN
from sync.contract import EarnRulesItem, LedgerPage, MemberSummary, TierRule

api = CloudApi("members")

#: Points one adjustment may move either way.
MAX_ADJUSTMENT = 10_000_000


class MemberOut(MemberSummary):
    available: int  # the balance less the stores' live holds
    status: str
    created_at: str


class MembersOut(BaseModel):
    members: list[MemberOut]


class LedgerOut(LedgerPage):
    """A page of a member's ledger (declared in the shared contract: stores pass it on)."""


class AdjustmentBody(RequestBody):
    points: int = Field(ge=-MAX_ADJUSTMENT, le=MAX_ADJUSTMENT)
    reason: str = Field(min_length=1, max_length=200, pattern=FREE_TEXT_PATTERN)


class AdjustmentOut(BaseModel):
    entry_id: int
    member_id: str
    points: int
    reason: str | None
    balance_after: int


class EarnRulesBody(RequestBody):
    """The chain's earn rules as HQ writes them (see :class:`sync.contract.EarnRulesItem`)."""

    points_per_unit: int = Field(default=100, ge=1, le=1_000_000)
    category_multipliers: dict[str, int] = Field(default={}, max_length=200)
    tier_multipliers: dict[str, int] = Field(default={}, max_length=20)
    hot_products: dict[str, int] = Field(default={}, max_length=500)
    tiers: list[TierRule] = Field(default=[TierRule(name="basic", min_spend=0)], max_length=10)


class ExceptionsOut(BaseModel):
    exceptions: list[dict[str, Any]]


class Recruiter(BaseModel):
    kind: str  # staff (the staff member signed in), device (none was), channel (online)
    id: str


class RecruiterRow(BaseModel):
    store_id: str | None  # None: signed up through a channel
    recruiter: Recruiter
    members: int
    spend: int  # their first window_days days, net of returns, in minor units


class RecruitmentOut(BaseModel):
    from_: str = Field(alias="from")
    to: str
    store: str | None
    window_days: int
    recruiters: list[RecruiterRow]


def lookup_text() -> str:
    """What this request's ``?code=`` or ``?phone=`` gives; 422 when neither."""
    text = request.args.get("code") or request.args.get("phone")
    if not text:
        raise Unprocessable("give ?phone= or ?code=", code="phone_or_code_required")
    return text


def looked_up() -> dict[str, Any]:
    """The member this request's ``?phone=`` or ``?code=`` names, as ``{"members": [...]}``."""
    c = ctx()
    member = service.look_up(
        c.db,
        c.members_keyring,
        lookup_text(),
        region=c.settings.members.default_region,
        now=c.clock.now(),
    )
    return {"members": [member]}


#: The query of a page of a ledger.
LEDGER_QUERY = (
    whole_number_param("limit", low=1, high=service.MAX_LEDGER_PAGE),
    whole_number_param("after", low=0, high=2**62, description="the last entry id read"),
)


def ledger_answer(member_id: str) -> dict[str, Any]:
    """The page of ``member_id``'s ledger this request's ``?after=`` and ``?limit=`` ask for."""
    limit = int_arg("limit", default=100, low=1, high=service.MAX_LEDGER_PAGE)
    after = int_arg("after", default=0, low=0, high=2**62)
    return service.ledger_page(ctx().db, member_id, after_id=after, limit=limit)


#: The query of a lookup by phone or member code.
LOOKUP_QUERY = (
    QueryParam("phone", {"type": "string", "maxLength": 32}, "a mobile number", False),
    QueryParam("code", {"type": "string", "maxLength": 32}, "a member code", False),
)


@api.route(
    "GET",
    "/members",
    summary="Find the member a phone number or member code names",
    caller="hq",
    response=MembersOut,
    query=LOOKUP_QUERY,
    errors=(404,),
)
def find_member(caller: Any) -> dict[str, Any]:
    """``{"members": [member]}``: the (surviving) member, with the phone masked."""
    return looked_up()


@api.route(
    "GET",
    "/members/<member_id>",
    summary="Read a member: masked phone, tier, balance and points free to spend",
    caller="hq",
    response=MemberOut,
    errors=(404,),
)
def read_member(caller: Any, member_id: str) -> dict[str, Any]:
    c = ctx()
    return service.read_member(c.db, c.members_keyring, member_id, now=c.clock.now())


@api.route(
    "GET",
    "/members/<member_id>/ledger",
    summary="Read a member's points ledger: every entry, why it happened and the lots it moved",
    caller="hq",
    response=LedgerOut,
    query=LEDGER_QUERY,
    errors=(404,),
)
def member_ledger(caller: Any, member_id: str) -> dict[str, Any]:
    return ledger_answer(member_id)


@api.route(
    "POST",
    "/members/<member_id>/adjustments",
    summary="Adjust a member's points, with a reason (Idempotency-Key header required)",
    caller="hq",
    body=AdjustmentBody,
    response=AdjustmentOut,
    status=201,
    idempotent=True,
    errors=(404, 409),
)
def adjust(caller: Any, member_id: str, body: AdjustmentBody) -> dict[str, Any]:
    key = check_key(request.headers.get("Idempotency-Key"), required=True)
    assert key is not None
    c = ctx()
    now = c.clock.now()
    if body.points == 0:
        raise Unprocessable("an adjustment moves at least one point", code="bad_points")
    return service.adjust_points(
        c.db,
        member_id,
        points=body.points,
        reason=body.reason,
        key=service.hq_origin_id(key),
        now=now,
        expiry=timedelta(days=c.settings.members.points_expiry_days),
    )


@api.route(
    "GET",
    "/exceptions",
    summary="List reconciliation exceptions: points overdrafts and the like, with their amounts",
    caller="hq",
    response=ExceptionsOut,
    query=(
        QueryParam("store", {"type": "string", "maxLength": 32}, "only this store", False),
        QueryParam("kind", {"type": "string", "maxLength": 32}, "only this kind", False),
        whole_number_param("limit", low=1, high=500),
        whole_number_param("after", low=0, high=2**62, description="the last id read"),
    ),
)
def exceptions(caller: Any) -> dict[str, Any]:
    return {
        "exceptions": list_exceptions(
            ctx().db,
            store_id=request.args.get("store"),
            kind=request.args.get("kind"),
            after_id=int_arg("after", default=0, low=0, high=2**62),
            limit=int_arg("limit", default=100, low=1, high=500),
        )
    }


@api.route(
    "GET",
    "/reports/recruitment",
    summary="Who recruited how many members in a period, and what they spent in their first "
    "90 days",
    caller="hq",
    response=RecruitmentOut,
    query=(
        QueryParam("from", {"type": "string", "format": "date"}, "the first day (UTC)", True),
        QueryParam("to", {"type": "string", "format": "date"}, "the last day (UTC)", True),
        QueryParam("store", {"type": "string", "maxLength": 32}, "only this store's", False),
    ),
    description="Per store and recruiter (the staff member signed in at the sign-up, else its "
    "device, else the channel a member signed up through), the members whose first sign-up "
    "falls in the period, and the spend of their sales and orders in their first 90 days, net "
    "of what returns of those sales refunded.",
)
def recruitment_report(caller: Any) -> dict[str, Any]:
    start, end = reports.period(request.args.get("from"), request.args.get("to"))
    return reports.recruitment(ctx().db, start=start, end=end, store_id=request.args.get("store"))


@api.route(
    "GET",
    "/earn-rules",
    summary="Read the chain's earn rules: points per amount, multipliers, hot products, tiers",
    caller="hq",
    response=EarnRulesItem,
)
def read_earn_rules(caller: Any) -> dict[str, Any]:
    with ctx().db.read() as session:
        return rules.current_rules(session).to_dict()


@api.route(
    "PUT",
    "/earn-rules",
    summary="Set the chain's earn rules; every store pulls them (feed earn_rules)",
    caller="hq",
    body=EarnRulesBody,
    response=EarnRulesItem,
    errors=(422,),
    description="Multipliers are in basis points (10000 is one). Tiers go up from a first tier "
    "at min_spend 0; a member's tier is the highest their last twelve months' spend reaches.",
)
def set_earn_rules(caller: Any, body: EarnRulesBody) -> dict[str, Any]:
    c = ctx()
    try:
        wanted = EarnRulesItem.model_validate(body.model_dump())
    except ValidationError as exc:
        raise Unprocessable(f"invalid earn rules: {exc.errors()[0]['msg']}") from None
    with c.db.write() as uow:
        saved = rules.set_rules(uow.session, wanted, now=c.clock.now())
        uow.commit()
    return saved.to_dict()
