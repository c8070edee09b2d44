"""The member registry: sign-up, lookup by phone or member code, and the merge of two sign-ups
of one phone.

A member is found by their phone's blind index (``shared.pii``), never by the phone's text,
which is stored sealed. A store that signs a member up offline makes the member's id and code
itself; when the cloud learns of it and the phone already has a member, the later sign-up is
merged into the earlier one (:func:`cloud.members.ledger.merge`), and the stores learn the
surviving id by pull.
"""

from __future__ import annotations

import secrets
from dataclasses import dataclass
from datetime import date, datetime

from sqlalchemy import select
from sqlalchemy.orm import Session

from cloud.errors import NotFound, Unprocessable
from cloud.members import ledger
from cloud.members.models import Member
from shared.ids import new_id
from shared.phones import InvalidPhone, mask_phone, normalise_phone
from shared.pii import Keyring

#: Member codes: 17 random digits and a Luhn check digit (what a scanner reads off the QR the
#: member's phone shows, or a cashier types).
CODE_DIGITS = 18
BASE_TIER = "basic"


def luhn_digit(digits: str) -> str:
    """The Luhn check digit of ``digits``."""
    total = 0
    for i, ch in enumerate(reversed(digits)):
        d = int(ch)
        if i % 2 == 0:
            d *= 2
            if d > 9:
                d -= 9
        total += d
    return str((10 - total % 10) % 10)


def new_member_code() -> str:
    body = "".join(secrets.choice("0123456789") for _ in range(CODE_DIGITS - 1))
    return body + luhn_digit(body)


def is_member_code(text: str) -> bool:
    return (
        len(text) == CODE_DIGITS
        and text.isascii()
        and text.isdigit()
        and luhn_digit(text[:-1]) == text[-1]
    )


@dataclass(frozen=True)
class SignUp:
    """A sign-up as a channel or a store sends it. ``member_id`` and ``code`` are the store's
    when it signed the member up offline; the cloud makes them otherwise."""

    phone: str  # as typed; normalised here
    name: str | None = None
    birthday: date | None = None
    member_id: str | None = None
    code: str | None = None
    store_id: str | None = None
    device_id: str | None = None
    recruited_by: str | None = None
    channel: str = "store"
    created_at: datetime | None = None


@dataclass(frozen=True)
class Registered:
    member: Member
    created: bool  # False: the phone had a member already (or this id was known)
    merged_from: str | None  # the offline sign-up folded into ``member``


def _sealed(keyring: Keyring, member_id: str, field: str, text: str | None) -> bytes | None:
    return None if text is None else keyring.seal(text, context=f"member:{member_id}:{field}")


def phone_of(keyring: Keyring, member: Member) -> str:
    """The member's phone, opened (for the member themself, never for a log)."""
    return keyring.open(member.phone_sealed, context=f"member:{member.id}:phone")


def name_of(keyring: Keyring, member: Member) -> str | None:
    if member.name_sealed is None:
        return None
    return keyring.open(member.name_sealed, context=f"member:{member.id}:name")


def read_phone(typed: str, *, region: str) -> str:
    try:
        return normalise_phone(typed, region=region)
    except InvalidPhone as exc:
        raise Unprocessable(str(exc), code="bad_phone") from None


def register(
    session: Session, keyring: Keyring, signup: SignUp, *, region: str, now: datetime
) -> Registered:
    """Register ``signup``: a new member, the phone's member when it has one, or (for an id the
    store made offline while the phone already had a member) that id folded into the phone's
    member."""
    phone = read_phone(signup.phone, region=region)
    index = keyring.blind_index("phone", phone)
    if signup.member_id is not None:
        known = session.get(Member, signup.member_id)
        if known is not None:
            survivor = session.get(Member, ledger.survivor_id(session, known.id))
            assert survivor is not None
            return Registered(survivor, created=False, merged_from=None)
    existing = session.execute(
        select(Member).where(Member.phone_index == index, Member.status == "active")
    ).scalar_one_or_none()
    if existing is not None and signup.member_id is None:
        return Registered(existing, created=False, merged_from=None)
    member = _insert(
        session,
        keyring,
        signup,
        phone=phone,
        index=index,
        now=now,
        merged_into=None if existing is None else existing.id,
    )
    if existing is None:
        return Registered(member, created=True, merged_from=None)
    # The same phone signed up in two places while offline: the earlier member survives.
    ledger.merge(session, survivor=existing.id, merged=member.id, now=now)
    return Registered(existing, created=False, merged_from=member.id)


def _insert(
    session: Session,
    keyring: Keyring,
    signup: SignUp,
    *,
    phone: str,
    index: str,
    now: datetime,
    merged_into: str | None,
) -> Member:
    member_id = signup.member_id or new_id()
    code = signup.code if signup.code and is_member_code(signup.code) else None
    if code is None or session.execute(select(Member.id).where(Member.code == code)).first():
        code = new_member_code()
    member = Member(
        id=member_id,
        code=code,
        phone_index=index,
        phone_sealed=_sealed(keyring, member_id, "phone", phone),
        name_sealed=_sealed(keyring, member_id, "name", signup.name),
        birthday_sealed=_sealed(
            keyring, member_id, "birthday", signup.birthday.isoformat() if signup.birthday else None
        ),
        status="active" if merged_into is None else "merged",
        merged_into=merged_into,
        tier=BASE_TIER,
        store_id=signup.store_id,
        device_id=signup.device_id,
        recruited_by=signup.recruited_by,
        channel=signup.channel,
        created_at=signup.created_at or now,
        registered_at=now,
        updated_at=now,
    )
    session.add(member)
    session.flush()
    return member


def find(session: Session, keyring: Keyring, text: str, *, region: str) -> Member:
    """The surviving member a member code or a phone number names; 404 ``unknown_member``."""
    text = text.strip()
    if is_member_code(text):
        member = session.execute(select(Member).where(Member.code == text)).scalar_one_or_none()
    else:
        index = keyring.blind_index("phone", read_phone(text, region=region))
        member = session.execute(
            select(Member).where(Member.phone_index == index, Member.status == "active")
        ).scalar_one_or_none()
    if member is None:
        raise NotFound("no member has this phone number or code", code="unknown_member")
    if member.merged_into is not None:
        survivor = session.get(Member, ledger.survivor_id(session, member.id))
        assert survivor is not None
        return survivor
    return member


def masked_phone(keyring: Keyring, member: Member) -> str:
    return mask_phone(phone_of(keyring, member))


def reseal(session: Session, keyring: Keyring, *, limit: int = 500) -> int:
    """Seal again, with the current key, up to ``limit`` members sealed with an older one;
    returns how many (run until 0 after a rotation)."""
    done = 0
    for member in session.execute(select(Member).order_by(Member.id)).scalars():
        fields = {
            "phone": member.phone_sealed,
            "name": member.name_sealed,
            "birthday": member.birthday_sealed,
        }
        if not any(v is not None and keyring.needs_resealing(v) for v in fields.values()):
            continue
        for field, sealed in fields.items():
            if sealed is None:
                continue
            context = f"member:{member.id}:{field}"
            setattr(
                member,
                f"{field}_sealed",
                keyring.seal(keyring.open(sealed, context=context), context=context),
            )
        done += 1
        if done >= limit:
            break
    return done
