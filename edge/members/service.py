"""Signing a member up at the store, online or offline, and finding one by phone or code.

A sign-up is the store's own write: the member row (phone and name sealed with the store's
keyring) and its ``member.signed_up`` event go in one transaction, so it works without the
cloud and reaches the cloud exactly once. The store makes the member's id (UUIDv7) and code; a
phone already known here answers the member it has. When one phone signed up in two stores while
both were offline, the cloud folds the later sign-up into the earlier and the stores learn the
surviving id by pull.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import select

from edge.db import Database
from edge.errors import NotFound, Unprocessable
from edge.idempotency import Retryable, remember
from edge.members.models import Member
from edge.outbox.service import record_event
from shared.ids import new_id
from shared.member_codes import is_member_code, new_member_code
from shared.phones import InvalidPhone, mask_phone, normalise_phone
from shared.pii import Keyring, seal_for
from sync.contract import MemberSignedUp, SealedMember


@dataclass(frozen=True)
class MemberView:
    """A member as a device sees them: never the phone in clear."""

    id: str
    code: str
    masked_phone: str
    tier: str
    balance: int
    provisional: bool

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
) -> tuple[MemberView, bool]:
    """Sign a member up here: (the member, whether it is new). A phone this store knows answers
    its member (200, nothing written). ``cloud_key``: the cloud's public key, pinned at
    enrollment, which the event's phone and name are sealed to."""
    e164 = read_phone(phone, region=region)
    index = keyring.blind_index("phone", e164)
    with db.write() as uow:
        s = uow.session
        known = s.execute(select(Member).where(Member.phone_index == index)).scalar_one_or_none()
        if known is not None:
            view = view_of(known)
            remember(s, retry, status=200, body=view.to_dict(), now=now)
            uow.commit()
            return view, False
        member_id = new_id()
        member = Member(
            id=member_id,
            code=new_member_code(),
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
        record_event(
            s,
            MemberSignedUp(
                store_id=store_id,
                member_id=member_id,
                code=member.code,
                sealed=seal_for(
                    cloud_key,
                    SealedMember(member_id=member_id, phone=e164, name=name).model_dump_json(),
                ),
                device_id=device_id,
                recruited_by=recruited_by,
                at=now.isoformat(),
            ),
            now=now,
        )
        view = view_of(member)
        remember(s, retry, status=201, body=view.to_dict(), now=now)
        uow.commit()
    return view, True


def find_member(db: Database, keyring: Keyring, text: str, *, region: str) -> MemberView:
    """The member this store knows by a member code or a phone number; 404 otherwise."""
    text = text.strip()
    with db.read() as s:
        if is_member_code(text):
            member = s.execute(select(Member).where(Member.code == text)).scalar_one_or_none()
        else:
            index = keyring.blind_index("phone", read_phone(text, region=region))
            member = s.execute(
                select(Member).where(Member.phone_index == index)
            ).scalar_one_or_none()
        if member is None:
            raise NotFound(
                "this store knows no member by that phone or code", code="unknown_member"
            )
        return view_of(member)
