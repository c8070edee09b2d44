"""The member registry: sign-up, lookup by phone or member code, and the merge of two sign-ups
of one phone.

A member is found by their phone's blind index (``shared.pii``), never by the phone's text,
which is stored sealed. A store that signs a member up offline makes the member's id and code
itself; when the cloud learns of it and the phone already has a member, the later sign-up is
merged into the earlier one (:func:`cloud.members.ledger.merge`), and the stores learn the
surviving id by pull.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date, datetime
from typing import Protocol

from sqlalchemy import literal_column, select
from sqlalchemy.orm import Session

from cloud.errors import NotFound, Unprocessable
from cloud.members import ledger
from cloud.members.models import Member
from shared.ids import new_id
from shared.member_codes import is_member_code, new_member_code
from shared.phones import InvalidPhone, mask_phone, normalise_phone
from shared.pii import Keyring
from sync.contract import MemberMergeItem

BASE_TIER = "basic"
#: The active members: written into the statement, not bound, so that PostgreSQL's generic plan
#: of a prepared lookup can use the partial unique index on active members' phones (a bound
#: ``status = $2`` cannot match the index's predicate, and a million members are scanned).
ACTIVE = Member.status == literal_column("'active'")


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


class SealedPhone(Protocol):
    """A member's row, or what of it their phone needs."""

    @property
    def id(self) -> str: ...
    @property
    def phone_sealed(self) -> bytes: ...


def phone_of(keyring: Keyring, member: SealedPhone) -> str:
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
        select(Member).where(Member.phone_index == index, ACTIVE)
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


def register_many(
    session: Session, keyring: Keyring, signups: Sequence[SignUp], *, region: str, now: datetime
) -> None:
    """:func:`register` each of ``signups`` in order (a store's batch of offline sign-ups), the
    plain ones written together: an id of the store's own not known yet, a phone with no member
    yet and signed up once in the run, a member code of the store's own not taken. The others
    (a sign-up sent again, a phone that already has a member or comes twice, a code to remake)
    go through :func:`register` one at a time, in order, after them."""
    if not signups:
        return
    phones = [read_phone(s.phone, region=region) for s in signups]
    indexes = [keyring.blind_index("phone", phone) for phone in phones]
    ids = [s.member_id for s in signups if s.member_id is not None]
    codes = [s.code for s in signups if s.code is not None]
    session.flush()
    known_ids = set(session.execute(select(Member.id).where(Member.id.in_(ids))).scalars())
    known_phones = set(
        session.execute(
            select(Member.phone_index).where(Member.phone_index.in_(indexes), ACTIVE)
        ).scalars()
    )
    known_codes = set(session.execute(select(Member.code).where(Member.code.in_(codes))).scalars())
    plain: list[Member] = []
    slow: list[SignUp] = []
    for signup, phone, index in zip(signups, phones, indexes, strict=True):
        if (
            signup.member_id is not None
            and signup.member_id not in known_ids
            and index not in known_phones
            and signup.code is not None
            and is_member_code(signup.code)
            and signup.code not in known_codes
        ):
            plain.append(_member_row(keyring, signup, phone=phone, index=index, now=now))
        else:
            slow.append(signup)
        known_phones.add(index)
        if signup.member_id is not None:
            known_ids.add(signup.member_id)
        if signup.code is not None:
            known_codes.add(signup.code)
    session.add_all(plain)
    session.flush()
    for signup in slow:
        register(session, keyring, signup, region=region, now=now)


def _member_row(
    keyring: Keyring,
    signup: SignUp,
    *,
    phone: str,
    index: str,
    now: datetime,
    code: str | None = None,
    merged_into: str | None = None,
) -> Member:
    member_id = signup.member_id or new_id()
    return Member(
        id=member_id,
        code=code or signup.code,
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
    code = signup.code if signup.code and is_member_code(signup.code) else None
    if code is None or session.execute(select(Member.id).where(Member.code == code)).first():
        code = new_member_code()
    member = _member_row(
        keyring, signup, phone=phone, index=index, now=now, code=code, merged_into=merged_into
    )
    session.add(member)
    session.flush()
    return member


def phone_index_of(keyring: Keyring, text: str, *, region: str) -> str | None:
    """The blind index of the phone ``text`` is, or None when ``text`` is a member code."""
    text = text.strip()
    if is_member_code(text):
        return None
    return keyring.blind_index("phone", read_phone(text, region=region))


def find(session: Session, keyring: Keyring, text: str, *, region: str) -> Member:
    """The surviving member a member code or a phone number names; 404 ``unknown_member``."""
    text = text.strip()
    if is_member_code(text):
        member = session.execute(select(Member).where(Member.code == text)).scalar_one_or_none()
    else:
        index = keyring.blind_index("phone", read_phone(text, region=region))
        member = session.execute(
            select(Member).where(Member.phone_index == index, ACTIVE)
        ).scalar_one_or_none()
    if member is None:
        raise NotFound("no member has this phone number or code", code="unknown_member")
    if member.merged_into is not None:
        survivor = session.get(Member, ledger.survivor_id(session, member.id))
        assert survivor is not None
        return survivor
    return member


def masked_phone(keyring: Keyring, member: SealedPhone) -> str:
    return mask_phone(phone_of(keyring, member))


def reseal(
    session: Session, keyring: Keyring, *, after: str | None = None, limit: int = 500
) -> tuple[int, str | None]:
    """Seal again, with the current key, what an older key sealed, for the next ``limit``
    members by id after ``after``: (how many were sealed again, the last id read, or None when
    there are no more)."""
    query = select(Member).order_by(Member.id).limit(limit)
    if after is not None:
        query = query.where(Member.id > after)
    members = list(session.execute(query).scalars())
    done = 0
    for member in members:
        sealed = {
            "phone": member.phone_sealed,
            "name": member.name_sealed,
            "birthday": member.birthday_sealed,
        }
        if not any(v is not None and keyring.needs_resealing(v) for v in sealed.values()):
            continue
        for name, value in sealed.items():
            if value is not None:
                context = f"member:{member.id}:{name}"
                text = keyring.open(value, context=context)
                setattr(member, f"{name}_sealed", keyring.seal(text, context=context))
        done += 1
    return done, (members[-1].id if members else None)


def merged_members_after(session: Session, after: str, limit: int) -> tuple[list[str], bool]:
    """The ids of merged members after ``after`` in id order (a page of the merges feed's
    snapshot), and whether there are more."""
    query = select(Member.id).where(Member.status == "merged")
    if after:
        query = query.where(Member.id > after)
    found = [str(i) for i in session.execute(query.order_by(Member.id).limit(limit + 1)).scalars()]
    return found[:limit], len(found) > limit


def member_merges(session: Session, keys: list[str]) -> list[tuple[str, MemberMergeItem]]:
    """The merges feed's items for merged members' ids: each with its surviving member."""
    out = []
    for key in keys:
        gone = session.get(Member, key)
        if gone is None or gone.merged_into is None:
            continue
        survivor = session.get(Member, ledger.survivor_id(session, key))
        assert survivor is not None
        out.append(
            (
                key,
                MemberMergeItem(
                    member_id=str(gone.id),
                    survivor_id=str(survivor.id),
                    survivor_code=survivor.code,
                    merged_at=gone.updated_at.isoformat(),
                ),
            )
        )
    return out
