"""Signing a member up at the store, online or offline, and finding one by phone or code.

A sign-up is the store's own write: the member row (phone and name sealed with the store's
keyring) and its ``member.signed_up`` event go in one transaction, so it works without the
cloud and reaches the cloud exactly once. The store makes the member's id (UUIDv7) and code; a
phone already known here answers the member it has. When one phone signed up in two stores while
both were offline, the cloud folds the later sign-up into the earlier and the stores learn the
surviving id by pull.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, replace
from datetime import datetime
from typing import Any

from sqlalchemy import select, text
from sqlalchemy.orm import Session

from edge.auth.service import SHOPPER_ROLES, Principal
from edge.db import Database
from edge.errors import CloudUnavailable, Conflict, NotFound, Unprocessable
from edge.idempotency import Retryable, remember
from edge.members.models import Member, MemberDevice
from edge.members.online import CloudMember, MemberCloud, MemberUnknown
from edge.outbox.service import record_event
from edge.sync_client.link import Link, link_of
from shared.ids import new_id
from shared.member_codes import is_member_code, new_member_code
from shared.phones import InvalidPhone, mask_phone, normalise_phone
from shared.pii import Keyring, seal_for
from sync.contract import MemberMergeItem, MemberSignedUp, SealedMember


@dataclass(frozen=True)
class MemberView:
    """A member as a device sees them: never the phone in clear."""

    id: str
    code: str | None  # None: withheld (a shopper's device gave a phone it did not prove)
    masked_phone: str
    tier: str
    balance: int
    provisional: bool

    def withheld(self) -> MemberView:
        """The member without their code: what a shopper's device sees of a phone number
        someone typed (the code is what proves the member, on their own app)."""
        return replace(self, code=None)

    def to_dict(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "code": self.code,
            "masked_phone": self.masked_phone,
            "tier": self.tier,
            "balance": self.balance,
            "provisional": self.provisional,
        }


def _context(member_id: str, field: str) -> str:
    return f"member:{member_id}:{field}"


def view_of(member: Member) -> MemberView:
    return MemberView(
        id=member.id,
        code=member.code,
        masked_phone=member.masked_phone,
        tier=member.tier,
        balance=member.balance,
        provisional=member.provisional,
    )


def read_phone(typed: str, *, region: str) -> str:
    try:
        return normalise_phone(typed, region=region)
    except InvalidPhone as exc:
        raise Unprocessable(str(exc), code="bad_phone", details={"field": "phone"}) from None


def sign_up(
    db: Database,
    keyring: Keyring,
    *,
    cloud_key: str,
    store_id: str,
    phone: str,
    name: str | None,
    device_id: str,
    recruited_by: str | None,
    region: str,
    now: datetime,
    retry: Retryable | None = None,
    cloud: MemberCloud | None = None,
    device_role: str | None = None,
) -> tuple[MemberView, bool]:
    """Sign a member up here: (the member, whether it is new). A phone this store knows answers
    its member (200, nothing written); on a shopper's kiosk or phone (``device_role``) without
    the member's code, since anyone may type a phone number. A member signed up on a shopper's
    own phone may read their ledger there (:func:`bind_device`).

    ``cloud_key``: the cloud's public key, pinned at enrollment, which the event's phone and
    name are sealed to. With ``cloud``, the chain is asked first (within the store's short
    timeout): a phone it knows answers its member (200), a new one is registered there at once
    (201, no event needed)."""
    e164 = read_phone(phone, region=region)
    index = keyring.blind_index("phone", e164)
    shopper_device, own_phone = device_role in SHOPPER_ROLES, device_role == "phone"
    with db.read() as s:
        known = s.execute(select(Member).where(Member.phone_index == index)).scalar_one_or_none()
        known_view = None if known is None else view_of(known)
    member_id = new_id()
    doc = MemberSignedUp(
        store_id=store_id,
        member_id=member_id,
        code=new_member_code(),
        sealed=seal_for(
            cloud_key, SealedMember(member_id=member_id, phone=e164, name=name).model_dump_json()
        ),
        device_id=device_id,
        recruited_by=recruited_by,
        at=now.isoformat(),
    )
    # Online, the chain registers the member now (and answers the member a phone already has);
    # offline, or when it does not answer in time, the member is made here and the event tells
    # the cloud later.
    found = None if cloud is None or known_view is not None else cloud.sign_up(doc, now=now)
    with db.write() as uow:
        s = uow.session
        if found is not None:
            row = adopt(s, keyring, found, now=now)
            created = found.member.id == member_id
            if created:
                row.device_id, row.recruited_by = device_id, recruited_by
                if own_phone:
                    _bind(s, row.id, device_id, now)
            view = view_of(row)
            if shopper_device and not created:
                view = view.withheld()
            remember(s, retry, status=201 if created else 200, body=view.to_dict(), now=now)
            uow.commit()
            return view, created
        known = s.execute(select(Member).where(Member.phone_index == index)).scalar_one_or_none()
        if known is not None:
            view = view_of(known).withheld() if shopper_device else view_of(known)
            remember(s, retry, status=200, body=view.to_dict(), now=now)
            uow.commit()
            return view, False
        member = Member(
            id=member_id,
            seal_id=member_id,
            code=doc.code,
            phone_index=index,
            phone_sealed=keyring.seal(e164, context=_context(member_id, "phone")),
            name_sealed=(
                None if name is None else keyring.seal(name, context=_context(member_id, "name"))
            ),
            masked_phone=mask_phone(e164),
            tier="basic",
            balance=0,
            balance_at=None,
            provisional=True,
            device_id=device_id,
            recruited_by=recruited_by,
            created_at=now,
            updated_at=now,
        )
        s.add(member)
        s.flush()
        if own_phone:
            _bind(s, member_id, device_id, now)
        record_event(s, doc, now=now)
        view = view_of(member)
        remember(s, retry, status=201, body=view.to_dict(), now=now)
        uow.commit()
    return view, True


#: This store's moves of a member's points the cloud has not acknowledged yet: what the
#: cloud's balance does not hold yet.
_PENDING = text(
    "SELECT COALESCE(SUM(s.points_earned - s.points_burned), 0) FROM outbox o "
    "JOIN sales s ON s.id = o.aggregate_id "
    "WHERE o.pushed_at IS NULL AND o.type = 'sale.completed' AND s.member_id = :member"
)


def adopt(session: Session, keyring: Keyring, found: CloudMember, *, now: datetime) -> Member:
    """Keep the cloud's member here, new or refreshed, in the caller's transaction.

    The balance kept is the cloud's, plus what this store moved that the cloud has not heard
    of yet. A member this store signed up offline under another id (the phone had a member
    already, or the cloud folded the sign-up into one) takes the surviving id and code; its
    open carts follow."""
    m = found.member
    index = keyring.blind_index("phone", found.phone)
    row = session.get(Member, m.id)
    if row is None:
        local = session.execute(
            select(Member).where(Member.phone_index == index)
        ).scalar_one_or_none()
        if local is not None:
            row = _rename(session, local.id, m.id)
    if row is None:
        row = Member(id=m.id, phone_index=index, created_at=now)
        session.add(row)
    # Sealed afresh: each sealed value is bound to its member's id, which may have changed.
    row.seal_id = m.id
    row.phone_sealed = keyring.seal(found.phone, context=_context(m.id, "phone"))
    row.name_sealed = (
        None if found.name is None else keyring.seal(found.name, context=_context(m.id, "name"))
    )
    pending = int(session.execute(_PENDING, {"member": m.id}).scalar_one())
    row.code = m.code
    row.masked_phone = m.masked_phone
    row.tier = m.tier
    row.balance = m.balance + pending
    row.balance_at = now
    row.provisional = False
    row.updated_at = now
    session.flush()
    return row


_CARTS_FOLLOW = text("UPDATE carts SET member_id = :new WHERE member_id = :old AND status = 'open'")
_DEVICES_FOLLOW = (
    text("UPDATE OR IGNORE member_devices SET member_id = :new WHERE member_id = :old"),
    text("DELETE FROM member_devices WHERE member_id = :old"),
)


def _follow(session: Session, old_id: str, new_id_: str) -> None:
    """What names a member by id and follows them to a surviving id: open carts (sales keep
    the id they were made for) and the phones the member proved themselves on."""
    for statement in (_CARTS_FOLLOW, *_DEVICES_FOLLOW):
        session.execute(statement, {"new": new_id_, "old": old_id})


def _rename(session: Session, old_id: str, new_id_: str) -> Member:
    """A member kept here under ``old_id`` is ``new_id_`` chain-wide: the row (its sealed fields
    still bound to the id they were sealed under) and what follows it (:func:`_follow`) move to
    the surviving id; the cloud applies sales made for the old id to the survivor. Returns the
    row."""
    session.flush()
    session.execute(
        text("UPDATE members SET id = :new, seal_id = COALESCE(seal_id, :old) WHERE id = :old"),
        {"new": new_id_, "old": old_id},
    )
    _follow(session, old_id, new_id_)
    session.expire_all()
    row = session.get(Member, new_id_)
    assert row is not None
    return row


def find_member(
    db: Database,
    keyring: Keyring,
    typed: str,
    *,
    region: str,
    now: datetime,
    cloud: MemberCloud | None = None,
) -> tuple[MemberView, bool]:
    """The member a member code or a phone number names, and whether the cloud gave them: the
    cloud's answer when it gives one in time (kept here for the next lookup and for offline),
    else this store's own copy; 404 ``unknown_member`` when neither knows them."""
    typed = typed.strip()
    by_code = is_member_code(typed)
    e164 = None if by_code else read_phone(typed, region=region)
    found = None
    if cloud is not None:
        try:
            found = cloud.look_up(typed if by_code else str(e164), now=now)
        except MemberUnknown:
            found = None  # a member signed up here and not yet at the cloud is still found here
    if found is not None:
        with db.write() as uow:
            view = view_of(adopt(uow.session, keyring, found, now=now))
            uow.commit()
            return view, True
    # The store's own copy: the lookup of every offline checkout with a member, on a bare
    # cursor (an ORM session costs more than the query here).
    key = typed if by_code else keyring.blind_index("phone", str(e164))
    with db.raw_read() as tx:
        row = tx.one(_BY_CODE if by_code else _BY_PHONE, (key,))
    if row is None:
        raise NotFound("no member has this phone number or code", code="unknown_member")
    member_id, code, masked, tier, balance, provisional = row
    return MemberView(member_id, code, masked, tier, balance, bool(provisional)), False


_VIEW_COLUMNS = "SELECT id, code, masked_phone, tier, balance, provisional FROM members"
_BY_CODE = f"{_VIEW_COLUMNS} WHERE code = ?"
_BY_PHONE = f"{_VIEW_COLUMNS} WHERE phone_index = ?"


def apply_member_merges(session: Session, items: Iterable[MemberMergeItem], now: datetime) -> None:
    """The merges feed, in the pull's transaction: a member kept here under a merged id takes
    the survivor's id and code (or folds into the survivor's row when the store keeps both),
    and open carts follow. A member this store never saw needs nothing."""
    for item in items:
        gone = session.get(Member, item.member_id)
        if gone is None:
            continue
        survivor = session.get(Member, item.survivor_id)
        if survivor is not None:
            # Both kept here: what the store knew of each is the survivor's now.
            _follow(session, item.member_id, item.survivor_id)
            survivor.balance += gone.balance
            survivor.updated_at = now
            session.delete(gone)
        else:
            row = _rename(session, item.member_id, item.survivor_id)
            row.code, row.provisional, row.updated_at = item.survivor_code, False, now
        session.flush()


def enrolled_link(db: Database, does: str) -> Link:
    """The store's link to the cloud (members are the chain's); 409 ``not_enrolled`` before
    the store is enrolled. ``does``: what the store would do, for the message."""
    link = link_of(db)
    if link is None:
        raise Conflict(
            f"members are the chain's: this store {does} once it is enrolled",
            code="not_enrolled",
        )
    return link


def _bind(session: Session, member_id: str, device_id: str, now: datetime) -> None:
    if session.get(MemberDevice, (member_id, device_id)) is None:
        session.add(MemberDevice(member_id=member_id, device_id=device_id, bound_at=now))
        session.flush()


def may_act_for(session: Session, principal: Principal, member_id: str) -> bool:
    """Staff may act for any member; a shopper's phone only for a member who proved themselves
    on it (signed up on it, or showed their member code on it)."""
    if not principal.is_shopper:
        return True
    return session.get(MemberDevice, (member_id, principal.device_id)) is not None


def bind_device(db: Database, member_id: str, device_id: str, *, now: datetime) -> None:
    """The member proved themselves on ``device_id``, a shopper's own phone (it showed their
    member code): that phone may read their ledger through the store from now on."""
    with db.write() as uow:
        _bind(uow.session, member_id, device_id, now)
        uow.commit()


#: Entries one page of a ledger read through the store holds at most.
MAX_LEDGER_PAGE = 200


def member_ledger(
    db: Database,
    cloud: MemberCloud | None,
    principal: Principal,
    member_id: str,
    *,
    after: int,
    limit: int,
    now: datetime,
) -> dict[str, Any]:
    """A page of the member's ledger at the cloud (the ledger is the cloud's): for staff, any
    member's; for a shopper's phone, only a member who proved themselves on it (any other is
    404 to it, as another device's cart is). 503 ``cloud_unavailable`` with the balance this
    store knows when the cloud does not answer; 409 ``not_enrolled`` before enrollment."""
    enrolled_link(db, "reads members' ledgers")
    with db.read() as s:
        if not may_act_for(s, principal, member_id):
            raise NotFound(
                f"no member {member_id!r} this phone may see: a phone reads the ledger of a "
                "member who signed up on it or showed their member code on it",
                code="unknown_member",
                details={"member_id": member_id},
            )
        member = s.get(Member, member_id)
        balance = None if member is None else member.balance
    try:
        page = None if cloud is None else cloud.ledger(member_id, after=after, limit=limit, now=now)
    except MemberUnknown:
        if balance is None:
            raise NotFound(f"no member {member_id!r}", code="unknown_member") from None
        page = None  # signed up here offline: the cloud has not heard of them yet
    if page is None:
        raise CloudUnavailable(
            "the points ledger is the chain's, and the store cannot reach it now; try again",
            details={"member_id": member_id, "balance": balance},
        )
    return page.model_dump()
