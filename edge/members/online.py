"""The store asking the cloud about members, within a short timeout (``members.online_timeout_s``).

Every call answers what the cloud said, or ``None`` when the cloud could not answer in time
(no link, a timeout, an unsigned or refused answer): the caller then carries on with the
store's own copy. After such a failure the calls stay quiet for ``members.online_retry_s``
seconds: a checkout does not wait out the timeout at every scan of a member's code while the
link is down, unless the store's sync job has had an answer from the cloud since (the link is
back: the next member call asks the cloud). Only two refusals are passed on, because they are
the chain's answer about the member and not a failure of the link: ``unknown_member``
(:class:`MemberUnknown`) and ``points_insufficient`` (409, with what is available).
"""

from __future__ import annotations

import logging
import threading
import time
from dataclasses import dataclass
from datetime import UTC, datetime

from cryptography.hazmat.primitives import serialization
from pydantic import ValidationError

from edge.db import Database, from_sql_time
from edge.errors import Conflict
from edge.settings import EdgeSettings
from edge.sync_client.link import Link, link_of
from edge.sync_client.transport import CloudClient, CloudLinkError, CloudRefused
from shared.member_codes import is_member_code
from shared.pii import KeyringError, open_sealed
from sync import keys
from sync.contract import (
    HoldRequest,
    LedgerPage,
    MemberSignedUp,
    PointsHeld,
    SealedMember,
    StoreMember,
)
from sync.protocol import canonical_json

log = logging.getLogger(__name__)

_JSON = {"Content-Type": "application/json"}


class MemberUnknown(Exception):
    """The cloud answered: no member has this phone or code."""


@dataclass(frozen=True)
class CloudMember:
    """A member as the cloud gave them, with their phone and name opened with the store's key."""

    member: StoreMember
    phone: str
    name: str | None


@dataclass(frozen=True)
class Channel:
    link: Link
    client: CloudClient
    seed: bytes  # the store's Ed25519 seed, which the cloud seals members' phones to


class MemberCloud:
    """The store's member calls to its cloud; one per process, safe to share between threads."""

    def __init__(self, settings: EdgeSettings, db: Database) -> None:
        self._settings = settings
        self._db = db
        self._lock = threading.Lock()
        self._channel: Channel | None = None
        self._quiet_until = 0.0  # time.monotonic(): until then, calls do not try the cloud
        self._gave_up_at: datetime | None = None  # the store's clock when they went quiet

    def channel(self) -> Channel | None:
        """The client for the enrolled cloud (made once per link); None when not enrolled, or
        while the calls are quiet after the cloud failed to answer or the store's key could
        not be read."""
        if time.monotonic() < self._quiet_until and not self._link_is_back():
            return None
        link = link_of(self._db)
        if link is None:
            return None
        with self._lock:
            if self._channel is None or self._channel.link != link:
                try:
                    key = keys.load_private_key(self._settings.sync_key_path)
                except keys.KeyFileError as exc:
                    # Said once a quiet time, not at every member code scanned.
                    log.warning("member calls go without the cloud: %s", exc)
                    self._quiet_until = time.monotonic() + self._settings.members.online_retry_s
                    return None
                timeout = self._settings.members.online_timeout_s
                self._channel = Channel(
                    link=link,
                    client=CloudClient(
                        link.cloud_url,
                        store_id=link.store_id,
                        store_key=key,
                        cloud_key=keys.load_public_key_b64(link.cloud_public_key),
                        timeout=(timeout, timeout),
                    ),
                    seed=key.private_bytes(
                        serialization.Encoding.Raw,
                        serialization.PrivateFormat.Raw,
                        serialization.NoEncryption(),
                    ),
                )
            return self._channel

    def gave_up(self, what: str, exc: CloudLinkError) -> None:
        """The cloud did not answer usably: the next ``members.online_retry_s`` seconds of member
        calls go straight to the store's own copy instead of each waiting out the timeout."""
        log.info("member %s: carrying on without the cloud (%s)", what, exc.code)
        with self._lock:
            self._quiet_until = time.monotonic() + self._settings.members.online_retry_s
            self._gave_up_at = datetime.now(UTC)

    def _link_is_back(self) -> bool:
        """Whether the sync job has had an answer from the cloud since the calls went quiet
        (one read of the store's sync state); then the quiet time ends."""
        gave_up = self._gave_up_at
        if gave_up is None:
            return False
        with self._db.raw_read() as tx:
            row = tx.one("SELECT last_contact_at FROM sync_state WHERE id = 1")
        contact = None if row is None else from_sql_time(row["last_contact_at"])
        if contact is None or contact <= gave_up:
            return False
        with self._lock:
            self._quiet_until = 0.0
            self._gave_up_at = None
        return True

    def close(self) -> None:
        with self._lock:
            if self._channel is not None:
                self._channel.client.close()
                self._channel = None

    def _member(self, channel: Channel, body: dict[str, object]) -> CloudMember | None:
        try:
            member = StoreMember.model_validate(body)
            sealed = SealedMember.model_validate_json(open_sealed(channel.seed, member.sealed))
        except (ValidationError, KeyringError) as exc:
            log.warning("the cloud's member answer is unusable: %s", type(exc).__name__)
            return None
        if sealed.member_id != member.id:
            log.warning("the cloud's member answer seals another member's phone")
            return None
        return CloudMember(member=member, phone=sealed.phone, name=sealed.name)

    def look_up(self, text: str, *, now: datetime) -> CloudMember | None:
        """The member a phone number or member code names at the cloud; :class:`MemberUnknown`
        when the cloud knows none; None when it did not answer."""
        channel = self.channel()
        if channel is None:
            return None
        param = "code" if is_member_code(text) else "phone"
        try:
            answer = channel.client.call(
                "GET", "/api/v1/store/members", now=now, params={param: text}
            )
        except CloudRefused as exc:
            if exc.code == "unknown_member":
                raise MemberUnknown from None
            self.gave_up("look-up", exc)
            return None
        except CloudLinkError as exc:
            self.gave_up("look-up", exc)
            return None
        return self._member(channel, answer.body)

    def sign_up(self, doc: MemberSignedUp, *, now: datetime) -> CloudMember | None:
        """Register a sign-up at the cloud now; the member the chain keeps for the phone, or
        None when the cloud did not answer (the sign-up then goes by the outbox)."""
        channel = self.channel()
        if channel is None:
            return None
        try:
            answer = channel.client.call(
                "POST",
                "/api/v1/store/members",
                now=now,
                body=canonical_json(doc.to_dict()),
                headers=_JSON,
            )
        except CloudLinkError as exc:
            self.gave_up("sign-up", exc)
            return None
        return self._member(channel, answer.body)

    def ledger(self, member_id: str, *, after: int, limit: int, now: datetime) -> LedgerPage | None:
        """A page of the member's ledger at the cloud; :class:`MemberUnknown` when the cloud
        knows no such member; None when it did not answer."""
        channel = self.channel()
        if channel is None:
            return None
        try:
            answer = channel.client.call(
                "GET",
                f"/api/v1/store/members/{member_id}/ledger",
                now=now,
                params={"after": after, "limit": limit},
            )
        except CloudRefused as exc:
            if exc.code == "unknown_member":
                raise MemberUnknown from None
            self.gave_up("ledger", exc)
            return None
        except CloudLinkError as exc:
            self.gave_up("ledger", exc)
            return None
        try:
            return LedgerPage.model_validate(answer.body)
        except ValidationError:
            log.warning("the cloud's ledger answer is unusable")
            return None

    def hold(
        self, member_id: str, *, hold_id: str, points: int, now: datetime
    ) -> PointsHeld | None:
        """Hold ``points`` of the member for a cart; 409 ``points_insufficient`` passed on; None
        when the cloud did not answer."""
        channel = self.channel()
        if channel is None:
            return None
        body = HoldRequest(hold_id=hold_id, points=points)
        try:
            answer = channel.client.call(
                "POST",
                f"/api/v1/store/members/{member_id}/holds",
                now=now,
                body=canonical_json(body.model_dump()),
                headers=_JSON,
            )
        except CloudRefused as exc:
            if exc.code == "points_insufficient":
                available = exc.details.get("available")
                raise Conflict(
                    f"the member has {available} points free to spend",
                    code="points_insufficient",
                    details={"available": available, "asked": points},
                ) from None
            self.gave_up("hold", exc)
            return None
        except CloudLinkError as exc:
            self.gave_up("hold", exc)
            return None
        try:
            return PointsHeld.model_validate(answer.body)
        except ValidationError:
            return None

    def release(self, hold_id: str, *, now: datetime) -> bool:
        """Give a hold back; False when the cloud did not answer (the hold then lapses by
        itself at the cloud)."""
        channel = self.channel()
        if channel is None:
            return False
        try:
            channel.client.call("DELETE", f"/api/v1/store/holds/{hold_id}", now=now)
        except CloudLinkError as exc:
            self.gave_up("release", exc)
            return False
        return True
