"""Members and points for the chain's other sales channels (an online shop, a mini-program):
sign a member up, earn and burn points for an order, hold points for a checkout.

The rules are the ledger's and the registry's (:mod:`cloud.members.ledger`,
:mod:`cloud.members.registry`); what this module adds is what a channel is:

* **Online.** A channel's burn beyond what the member has free (the balance less the live
  holds, plus the channel's own hold that the burn spends) is refused, 409
  ``points_insufficient``: unlike a store's offline sale, nothing has happened yet.
* **Its orders are its own.** An order's points are the ledger origin ``order`` with the id
  ``<channel>:<order id>``: two channels' order 1001 never meet, and an order earns once and
  burns once whatever key it is sent with (the same facts again answer the entry already made,
  200; other facts are 409 ``order_already_recorded``).
* **Every write once per key.** The first answer to a token's ``Idempotency-Key`` is kept, in
  the write's transaction, with the fingerprint of what was asked (a keyed hash: a phone is
  never stored in clear). The same key answers the first answer again for the same request and
  409 ``idempotency_key_reused`` for another one. A refusal keeps nothing, as it writes nothing:
  the key is free for a request that can be applied. Two requests with one key at the same
  moment are applied once: the second waits for the first's claim on the key (PostgreSQL's
  unique index; SQLite serialises writers) and then answers its answer.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import update
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.orm import Session

from cloud.db import Database
from cloud.errors import Conflict, NotFound
from cloud.members import ledger, registry
from cloud.members.ledger import Origin
from cloud.members.models import ChannelRequest, PointsEntry, PointsHold
from cloud.members.rules import retier
from cloud.members.service import member_dict
from shared.ids import new_id
from shared.pii import Keyring

#: An order id as a channel names it: visible ASCII, short enough that ``<channel>:<order id>``
#: (a channel's name is up to 16 characters) fits the ledger's 64-character origin id.
ORDER_ID_MAX = 47
ORDER_ID_PATTERN = rf"^[!-~]{{1,{ORDER_ID_MAX}}}$"

#: A kept answer: its body and its status.
Answer = tuple[dict[str, Any], int]


@dataclass(frozen=True)
class Channel:
    """Who calls: the channel's name (recorded on the members it signs up and its orders) and
    the token (whose Idempotency-Keys are its own)."""

    name: str
    token_id: str


@dataclass(frozen=True)
class Write:
    """One write of a channel: who sends it, under which key, and what it asks (which the
    fingerprint of the request is made of)."""

    channel: Channel
    key: str
    operation: str
    asked: dict[str, Any]

    def fingerprint(self, keyring: Keyring) -> str:
        text = json.dumps(
            {"operation": self.operation, **self.asked}, sort_keys=True, separators=(",", ":")
        )
        return keyring.blind_index("channel_request", text)


def _claim(session: Session, row: dict[str, Any]) -> bool:
    """Insert ``row`` unless the key is taken; True when this request took it. On PostgreSQL a
    key another transaction is claiming makes this wait for that transaction's end."""
    dialect = postgresql if session.get_bind().dialect.name == "postgresql" else sqlite
    table = ChannelRequest.__table__
    claimed = session.execute(
        dialect.insert(table).values(**row).on_conflict_do_nothing().returning(table.c.key)
    ).first()
    return claimed is not None


def once(
    db: Database,
    keyring: Keyring,
    write: Write,
    *,
    now: datetime,
    step: Callable[[Session], Answer],
) -> Answer:
    """``step``'s answer, applied and kept under ``write``'s key in one transaction; the kept
    answer when the key was used for this same request; 409 when used for another."""
    fingerprint = write.fingerprint(keyring)
    token_id = write.channel.token_id
    with db.write() as uow:
        session = uow.session
        claimed = _claim(
            session,
            {
                "token_id": token_id,
                "key": write.key,
                "fingerprint": fingerprint,
                "status": 0,
                "answer": "",
                "created_at": now,
            },
        )
        if not claimed:
            kept = session.get(ChannelRequest, (token_id, write.key))
            assert kept is not None and kept.status
            if kept.fingerprint != fingerprint:
                raise Conflict(
                    "this Idempotency-Key was used for another request",
                    code="idempotency_key_reused",
                )
            answer: dict[str, Any] = json.loads(kept.answer)
            return answer, kept.status
        body, status = step(session)
        session.execute(
            update(ChannelRequest)
            .where(ChannelRequest.token_id == token_id, ChannelRequest.key == write.key)
            .values(status=status, answer=json.dumps(body, separators=(",", ":")))
        )
        uow.commit()
        return body, status


# -- the channel's moves ---------------------------------------------------------------------


def sign_up(
    db: Database,
    keyring: Keyring,
    channel: Channel,
    *,
    phone: str,
    name: str | None,
    key: str,
    region: str,
    now: datetime,
) -> Answer:
    """Sign a member up through ``channel``: 201 and a new member, or 200 and the member the
    phone already has (whichever channel or store signed them up)."""
    normalised = registry.read_phone(phone, region=region)  # 422 bad_phone, before anything
    write = Write(channel, key, "sign_up", {"phone": normalised, "name": name})

    def step(session: Session) -> Answer:
        done = registry.register(
            session,
            keyring,
            registry.SignUp(phone=normalised, name=name, channel=channel.name, created_at=now),
            region=region,
            now=now,
        )
        return member_dict(session, keyring, done.member, now=now), 201 if done.created else 200

    return once(db, keyring, write, now=now, step=step)


def _order(channel: Channel, order_id: str) -> Origin:
    return Origin("order", f"{channel.name}:{order_id}")


def _moved(session: Session, entry: PointsEntry, order_id: str, *, now: datetime) -> dict[str, Any]:
    balance = ledger.balance(session, entry.member_id)
    return {
        "entry_id": entry.id,
        "member_id": entry.member_id,
        "order_id": order_id,
        "kind": entry.kind,
        "points": entry.points,
        "spend": entry.spend,
        "balance": balance,
        "available": balance - ledger.held(session, entry.member_id, now=now),
    }


def _already(
    session: Session, entry: PointsEntry, member_id: str, *, points: int, spend: int
) -> None:
    """409 unless the order's recorded ``entry`` is the one asked for again."""
    same = (
        entry.member_id == ledger.survivor_id(session, member_id)
        and entry.points == points
        and entry.spend == spend
    )
    if not same:
        raise Conflict(
            f"this order's {entry.kind} is already recorded, with other points",
            code="order_already_recorded",
            details={"kind": entry.kind, "points": abs(entry.points), "spend": entry.spend},
        )


def earn(
    db: Database,
    keyring: Keyring,
    channel: Channel,
    member_id: str,
    *,
    order_id: str,
    points: int,
    spend: int,
    key: str,
    now: datetime,
    expiry: timedelta,
) -> Answer:
    """``points`` earned by the member on ``spend`` (minor units) by the channel's order."""
    write = Write(
        channel,
        key,
        "earn",
        {"member": member_id, "order": order_id, "points": points, "spend": spend},
    )
    origin = _order(channel, order_id)

    def step(session: Session) -> Answer:
        entry = ledger.earn(
            session,
            member_id,
            points=points,
            spend=spend,
            origin=origin,
            store_id=None,
            at=now,
            expiry=expiry,
            now=now,
        )
        if entry is not None:
            retier(session, member_id, now=now)
            return _moved(session, entry, order_id, now=now), 201
        recorded = ledger.entry_of(session, origin, "earn")
        assert recorded is not None
        _already(session, recorded, member_id, points=points, spend=spend)
        return _moved(session, recorded, order_id, now=now), 200

    return once(db, keyring, write, now=now, step=step)


def _channels_hold(session: Session, channel: Channel, member_id: str, hold_id: str) -> PointsHold:
    """The channel's own hold on the member; 404 ``unknown_hold`` for any other (another
    channel's holds are not this one's to see)."""
    hold = session.get(PointsHold, hold_id)
    if hold is None or hold.member_id != member_id or hold.store_id != channel.name:
        raise NotFound(f"this channel holds no {hold_id!r} for the member", code="unknown_hold")
    return hold


def _live(hold: PointsHold, *, now: datetime) -> PointsHold:
    if hold.status != "held" or hold.expires_at <= now:
        status = hold.status if hold.status != "held" else "lapsed"
        raise Conflict(f"the hold is {status}", code="hold_not_live", details={"status": status})
    return hold


def burn(
    db: Database,
    keyring: Keyring,
    channel: Channel,
    member_id: str,
    *,
    order_id: str,
    points: int,
    hold_id: str | None,
    key: str,
    now: datetime,
) -> Answer:
    """``points`` spent by the channel's order, out of what the member has free (and the
    channel's hold ``hold_id``, which the burn spends); 409 ``points_insufficient`` beyond."""
    write = Write(
        channel,
        key,
        "burn",
        {"member": member_id, "order": order_id, "points": points, "hold": hold_id},
    )
    origin = _order(channel, order_id)

    def step(session: Session) -> Answer:
        member = ledger.lock_member(session, member_id)
        recorded = ledger.entry_of(session, origin, "burn")
        if recorded is not None:
            _already(session, recorded, member_id, points=-points, spend=0)
            return _moved(session, recorded, order_id, now=now), 200
        free = ledger.balance(session, member.id) - ledger.held(session, member.id, now=now)
        if hold_id is not None:
            free += _live(_channels_hold(session, channel, member.id, hold_id), now=now).points
        if points > free:
            raise Conflict(
                f"the member has {max(free, 0)} points free to spend",
                code="points_insufficient",
                details={"available": max(free, 0), "asked": points},
            )
        entry = ledger.burn(
            session,
            member_id,
            points=points,
            origin=origin,
            store_id=None,
            at=now,
            now=now,
            hold_id=hold_id,
        )
        assert entry is not None
        return _moved(session, entry, order_id, now=now), 201

    return once(db, keyring, write, now=now, step=step)


def _hold_dict(session: Session, hold: PointsHold, *, now: datetime) -> dict[str, Any]:
    balance = ledger.balance(session, hold.member_id)
    return {
        "hold_id": hold.id,
        "member_id": hold.member_id,
        "points": hold.points,
        "status": hold.status,
        "expires_at": hold.expires_at.isoformat(),
        "available": balance - ledger.held(session, hold.member_id, now=now),
    }


def hold(
    db: Database,
    keyring: Keyring,
    channel: Channel,
    member_id: str,
    *,
    points: int,
    key: str,
    now: datetime,
    ttl: timedelta,
) -> Answer:
    """Set ``points`` aside for a checkout in the channel until a burn spends them, the channel
    releases them or ``ttl`` passes; 409 ``points_insufficient`` beyond what is free."""
    write = Write(channel, key, "hold", {"member": member_id, "points": points})

    def step(session: Session) -> Answer:
        placed = ledger.place_hold(
            session,
            member_id,
            hold_id=new_id(),
            points=points,
            store_id=channel.name,  # who holds: a channel here
            ttl=ttl,
            now=now,
        )
        return _hold_dict(session, placed, now=now), 201

    return once(db, keyring, write, now=now, step=step)


def release(
    db: Database,
    keyring: Keyring,
    channel: Channel,
    member_id: str,
    hold_id: str,
    *,
    key: str,
    now: datetime,
) -> Answer:
    """Give the channel's live hold back (a checkout abandoned)."""
    write = Write(channel, key, "release", {"member": member_id, "hold": hold_id})

    def step(session: Session) -> Answer:
        member = ledger.lock_member(session, member_id)
        held = _live(_channels_hold(session, channel, member.id, hold_id), now=now)
        ledger.release_hold(session, held.id)
        session.refresh(held)
        return _hold_dict(session, held, now=now), 200

    return once(db, keyring, write, now=now, step=step)
