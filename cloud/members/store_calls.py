"""What a store asks the cloud about members while it is online, each within a short timeout
of the store's: find a member, sign one up, set points aside for a cart and give them back.

A store that gets no answer in time carries on with its own copy (see ``edge.members``): these
calls make the chain's view current, they are never needed to sell. The member's phone and name
go back to the store sealed to the store's own key, so the store keeps them findable by phone and
they cross the wire in clear neither way.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

from sqlalchemy.orm import Session

from cloud.db import Database
from cloud.errors import Forbidden, Unavailable
from cloud.members import ledger, registry
from cloud.members.effects import MemberRules, register_sign_up
from cloud.members.models import Member, PointsHold
from cloud.members.service import member_dict
from cloud.stores.service import active_key
from shared.pii import seal_for
from sync.contract import MemberSignedUp, PointsHeld, SealedMember, StoreMember, utc_time


def _for_store(
    session: Session, rules: MemberRules, store_id: str, member: Member, *, now: datetime
) -> dict[str, Any]:
    """``member`` as the store keeps them: the summary, and the phone and name sealed to the
    store's current key."""
    key = active_key(session, store_id)
    if key is None:  # a revoked store is refused before this; a race with revocation lands here
        raise Unavailable("this store has no key to seal the member's phone to", code="no_key")
    shown = member_dict(session, rules.keyring, member, now=now)
    sealed = SealedMember(
        member_id=member.id,
        phone=registry.phone_of(rules.keyring, member),
        name=registry.name_of(rules.keyring, member),
    )
    return StoreMember(
        **{k: shown[k] for k in ("id", "code", "masked_phone", "tier", "balance", "available")},
        sealed=seal_for(key, sealed.model_dump_json()),
    ).model_dump()


def look_up(
    db: Database, rules: MemberRules, store_id: str, text: str, *, now: datetime
) -> dict[str, Any]:
    """The (surviving) member a phone number or member code names, for ``store_id``."""
    with db.read() as session:
        member = registry.find(session, rules.keyring, text, region=rules.region)
        return _for_store(session, rules, store_id, member, now=now)


def sign_up(
    db: Database, rules: MemberRules, store_id: str, doc: MemberSignedUp, *, now: datetime
) -> tuple[dict[str, Any], bool]:
    """Register a store's sign-up now rather than when its event arrives: (the member, whether
    new). A phone the chain already knows answers its member; the store then keeps that one."""
    if doc.store_id != store_id:
        raise Forbidden("a store signs members up for itself", code="wrong_store")
    with db.write() as uow:
        registered = register_sign_up(
            uow.session, store_id, doc, rules, at=utc_time(doc.at, "at"), now=now
        )
        answer = _for_store(uow.session, rules, store_id, registered.member, now=now)
        uow.commit()
    return answer, registered.created


def hold(
    db: Database,
    store_id: str,
    member_id: str,
    *,
    hold_id: str,
    points: int,
    ttl: timedelta,
    now: datetime,
) -> dict[str, Any]:
    """Set ``points`` aside for a cart of ``store_id``; the same ``hold_id`` again answers the
    first hold (409 ``points_insufficient`` when not enough are free)."""
    with db.write() as uow:
        s = uow.session
        placed = ledger.place_hold(
            s, member_id, hold_id=hold_id, points=points, store_id=store_id, ttl=ttl, now=now
        )
        if placed.store_id != store_id:
            raise Forbidden("this hold is another store's", code="wrong_store")
        balance = ledger.balance(s, placed.member_id)
        answer = PointsHeld(
            hold_id=placed.id,
            member_id=placed.member_id,
            points=placed.points,
            expires_at=placed.expires_at.isoformat(),
            balance=balance,
            available=balance - ledger.held(s, placed.member_id, now=now),
        ).model_dump()
        uow.commit()
    return answer


def release(db: Database, store_id: str, hold_id: str) -> bool:
    """Give a live hold of ``store_id`` back; False when there is none (already burned, lapsed
    or released): releasing is safe to repeat."""
    with db.write() as uow:
        placed = uow.session.get(PointsHold, hold_id)
        if placed is not None and placed.store_id != store_id:
            raise Forbidden("this hold is another store's", code="wrong_store")
        released = placed is not None and ledger.release_hold(uow.session, hold_id)
        uow.commit()
    return released
