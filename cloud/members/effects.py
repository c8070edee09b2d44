"""What a store's events do to members and points at the cloud.

Ingest reads each event with its schema and hands the member part of it here, in the same
transaction as the event's rows: a sign-up registers the member (folding a second sign-up of
one phone into the first), a sale burns and earns (and records its spend, even with no points
earned), a return takes earned points back and gives burned ones back. Each move is tied to its
origin (the sale, the return), so an event applied twice moves nothing the second time.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime, timedelta

from cryptography.hazmat.primitives import serialization
from pydantic import ValidationError
from sqlalchemy.orm import Session

from cloud.context import CloudContext
from cloud.errors import Unprocessable
from cloud.members import ledger, registry
from cloud.members.ledger import Origin
from cloud.members.rules import retier_many
from shared.pii import Keyring, KeyringError, open_sealed
from sync.contract import MemberSignedUp, SaleMember, SealedMember


@dataclass(frozen=True)
class MemberRules:
    """What applying member events needs from the cloud's settings."""

    keyring: Keyring
    region: str  # where a phone without its country code is read
    expiry: timedelta  # how long earned points live
    cloud_seed: bytes  # the cloud's Ed25519 key, which stores seal members' phones to

    @classmethod
    def of(cls, context: CloudContext) -> MemberRules:
        """This cloud's keyring and rules, from its settings."""
        members = context.settings.members
        return cls(
            keyring=context.members_keyring,
            region=members.default_region,
            expiry=timedelta(days=members.points_expiry_days),
            cloud_seed=context.cloud_key.private_bytes(
                serialization.Encoding.Raw,
                serialization.PrivateFormat.Raw,
                serialization.NoEncryption(),
            ),
        )


@dataclass(frozen=True)
class SignedUp:
    store_id: str
    doc: MemberSignedUp
    at: datetime


@dataclass(frozen=True)
class SalePoints:
    store_id: str
    sale_id: str
    member: SaleMember
    at: datetime


@dataclass(frozen=True)
class ReturnPoints:
    store_id: str
    return_id: str
    sale_id: str
    refunded: int
    points_back: int
    at: datetime


Effect = SignedUp | SalePoints | ReturnPoints


def _opened(doc: MemberSignedUp, rules: MemberRules) -> SealedMember:
    """The phone and name a store sealed to this cloud, for the member the event names."""
    try:
        sealed = SealedMember.model_validate_json(open_sealed(rules.cloud_seed, doc.sealed))
    except (KeyringError, ValidationError) as exc:
        raise Unprocessable(
            f"the sign-up's sealed phone cannot be read: {exc}", code="bad_sealed_member"
        ) from None
    if sealed.member_id != doc.member_id:
        raise Unprocessable(
            "the sealed phone belongs to another member's sign-up", code="bad_sealed_member"
        )
    return sealed


def register_sign_up(
    session: Session,
    store_id: str,
    doc: MemberSignedUp,
    rules: MemberRules,
    *,
    at: datetime,
    now: datetime,
) -> registry.Registered:
    """Register a store's sign-up (from its event, or from the store asking online)."""
    return registry.register(
        session, rules.keyring, _sign_up(store_id, doc, rules, at=at), region=rules.region, now=now
    )


def _sign_up(
    store_id: str, doc: MemberSignedUp, rules: MemberRules, *, at: datetime
) -> registry.SignUp:
    sealed = _opened(doc, rules)
    return registry.SignUp(
        phone=sealed.phone,
        name=sealed.name,
        store_id=store_id,
        channel="store",
        created_at=at,
        **doc.model_dump(include={"member_id", "code", "device_id", "recruited_by"}),
    )


def apply_all(
    session: Session, effects: Iterable[Effect], rules: MemberRules, *, now: datetime
) -> None:
    """Apply events' member parts in order, in the caller's transaction; then set the tier of
    each member whose spend they moved, once (a batch of a busy store's sales names the same
    members many times over).

    A sale's points paid come first, then its reward: an offline burn beyond the balance is
    measured against the balance before the sale's own points. Sales wait in a run that is
    written together (:func:`ledger.sales_many`, which keeps each member's sales in order), and
    so do sign-ups (:func:`registry.register_many`), until an effect of another kind comes; a
    return reads and writes the ledger on its own. Every sale of a
    member records what they spent, even one that earned no points: the earn entries are where
    a member's spend is counted (the recruitment report), and a return measures what it takes
    back against them."""
    moved: dict[str, None] = {}
    sales: list[ledger.SaleMove] = []
    sign_ups: list[registry.SignUp] = []

    def write_runs() -> None:
        ledger.sales_many(session, sales, expiry=rules.expiry, now=now)
        sales.clear()
        registry.register_many(session, rules.keyring, sign_ups, region=rules.region, now=now)
        sign_ups.clear()

    for effect in effects:
        if isinstance(effect, SignedUp):
            if sales:
                write_runs()
            sign_ups.append(_sign_up(effect.store_id, effect.doc, rules, at=effect.at))
            continue
        if sign_ups:
            write_runs()
        if isinstance(effect, SalePoints):
            m = effect.member
            move = ledger.SaleMove(
                member_id=m.id,
                sale_id=effect.sale_id,
                store_id=effect.store_id,
                at=effect.at,
                burned=m.burned,
                hold_id=m.hold_id,
                earned=m.earned,
                spend=m.spend,
            )
            if move.burned or move.earns:
                sales.append(move)
            if move.earns:
                moved[m.id] = None
            continue
        write_runs()
        member_id = _return_points(session, effect, now=now)
        if member_id is not None:
            moved[member_id] = None
    write_runs()
    retier_many(session, moved, now=now)


def _return_points(session: Session, effect: ReturnPoints, *, now: datetime) -> str | None:
    """A return's points moves; answers the member whose spend it moved, if any."""
    sale = Origin("sale", effect.sale_id)
    back = Origin("return", effect.return_id)
    if effect.refunded:
        ledger.take_back_earned(
            session,
            sale=sale,
            origin=back,
            refunded=effect.refunded,
            store_id=effect.store_id,
            at=effect.at,
            now=now,
        )
    if effect.points_back:
        ledger.give_back_burned(
            session,
            sale=sale,
            origin=back,
            points=effect.points_back,
            store_id=effect.store_id,
            at=effect.at,
            now=now,
        )
    earned = ledger.entry_of(session, sale, "earn")
    return None if earned is None else earned.member_id
