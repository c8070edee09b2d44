"""Coupon codes: what a coupon's QR carries, and the short id a shopper can type.

A personal coupon's **code** is 95 bytes written in Crockford's base32 (152 characters, digits
and capital letters only, so a QR holds it in its compact alphanumeric mode):

=======  =====  ==========================================================================
offset   bytes  what
=======  =====  ==========================================================================
0        1      format (1)
1        10     the coupon's id (random: an id cannot be guessed from another)
11       4      the campaign's number
15       8      the member's tag: the first 8 bytes of SHA-256 of the member's id
23       4      valid from, minutes since 1970-01-01 UTC
27       4      valid until (not included), minutes since 1970-01-01 UTC
31       64     the cloud's Ed25519 signature of ``aisle-coupon-v1\\0`` and bytes 0-30
=======  =====  ==========================================================================

A store holds the cloud's public key (pinned at enrollment), so it checks a code with no link
to the cloud: one bit changed, another key, a stretched date, and the signature fails.

A signature is 64 bytes whatever is signed: no code that a store can check alone is short
enough to type. The **coupon id** is: 16 characters, written in four groups of four
(``8EQW-YN7V-B4C2-VYDY``). A store that can reach the cloud turns a typed id into its code (the
cloud answers the member's coupon); offline, a typed id is refused and the QR must be scanned.

Codes and ids use Crockford's alphabet: when typed, ``O`` reads as ``0``, ``I`` and ``L`` as
``1``, dashes and spaces are ignored, and case does not matter.
"""

from __future__ import annotations

import base64
import hashlib
import secrets
import struct
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey

FORMAT = 1
CONTEXT = b"aisle-coupon-v1\x00"
ID_BYTES = 10
ID_LENGTH = 16  # characters of a coupon id, without dashes
_PAYLOAD = struct.Struct(">B10sI8sII")
SIGNATURE_BYTES = 64
CODE_LENGTH = (_PAYLOAD.size + SIGNATURE_BYTES) * 8 // 5  # 152
_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
NO_MEMBER = bytes(8)
#: What a campaign's claim QR holds before the campaign's id: a shopper's phone that scans it in
#: a store claims a coupon of that campaign.
CLAIM_PREFIX = "AISLE-CLAIM:"

_RFC = "ABCDEFGHIJKLMNOPQRSTUVWXYZ234567"
_CROCKFORD = "0123456789ABCDEFGHJKMNPQRSTVWXYZ"
_TO_CROCKFORD = str.maketrans(_RFC, _CROCKFORD)
_FROM_CROCKFORD = str.maketrans(_CROCKFORD, _RFC)
_TYPED = str.maketrans({"O": "0", "I": "1", "L": "1", "-": None, " ": None})


class CodeInvalid(ValueError):
    """Not a coupon code, or one whose signature does not hold (forged or changed)."""


def _encode(data: bytes) -> str:
    return base64.b32encode(data).decode().translate(_TO_CROCKFORD)


def _decode(text: str) -> bytes:
    try:
        return base64.b32decode(text.translate(_FROM_CROCKFORD))
    except ValueError:
        raise CodeInvalid("not base32") from None


def normalise(text: str) -> str:
    """``text`` as typed or scanned, in the one form codes and ids are compared in."""
    return text.strip().upper().translate(_TYPED)


def new_coupon_id() -> str:
    return _encode(secrets.token_bytes(ID_BYTES))


def is_coupon_id(text: str) -> bool:
    """Whether ``text`` (normalised) has the form of a coupon id."""
    return len(text) == ID_LENGTH and all(c in _CROCKFORD for c in text)


def is_signed_code(text: str) -> bool:
    """Whether ``text`` (normalised) has the form of a personal coupon's signed code."""
    return len(text) == CODE_LENGTH and all(c in _CROCKFORD for c in text)


def show_id(coupon_id: str) -> str:
    """A coupon id as printed for typing, in four groups of four: ``8EQW-YN7V-B4C2-VYDY``."""
    return "-".join(coupon_id[i : i + 4] for i in range(0, len(coupon_id), 4))


def member_tag(member_id: str | None) -> bytes:
    """What a code says of its member: 8 bytes of SHA-256 of the id (no member: zeros)."""
    if member_id is None:
        return NO_MEMBER
    return hashlib.sha256(member_id.encode()).digest()[:8]


def _minutes(moment: datetime) -> int:
    if moment.tzinfo is None:
        raise ValueError("naive datetime refused")
    return int((moment - _EPOCH) // timedelta(minutes=1))


@dataclass(frozen=True, slots=True)
class CouponCode:
    """What a signed code says."""

    coupon_id: str
    campaign_number: int
    member_tag: bytes
    valid_from: datetime
    valid_until: datetime  # not included

    def for_member(self, member_id: str | None) -> bool:
        return self.member_tag == member_tag(member_id)


def sign(
    key: Ed25519PrivateKey,
    *,
    coupon_id: str,
    campaign_number: int,
    member_id: str | None,
    valid_from: datetime,
    valid_until: datetime,
) -> str:
    """The signed code of a coupon."""
    raw_id = _decode(coupon_id)
    if len(raw_id) != ID_BYTES:
        raise ValueError(f"{coupon_id!r} is not a coupon id")
    payload = _PAYLOAD.pack(
        FORMAT,
        raw_id,
        campaign_number,
        member_tag(member_id),
        _minutes(valid_from),
        _minutes(valid_until),
    )
    return _encode(payload + key.sign(CONTEXT + payload))


def verify(public_key: Ed25519PublicKey, text: str) -> CouponCode:
    """What the signed code ``text`` says; :class:`CodeInvalid` unless the cloud's key signed
    exactly it."""
    code = normalise(text)
    if not is_signed_code(code):
        raise CodeInvalid("not a coupon code")
    raw = _decode(code)
    payload, signature = raw[: _PAYLOAD.size], raw[_PAYLOAD.size :]
    try:
        public_key.verify(signature, CONTEXT + payload)
    except InvalidSignature:
        raise CodeInvalid("the code's signature does not hold") from None
    fmt, raw_id, number, tag, start, until = _PAYLOAD.unpack(payload)
    if fmt != FORMAT:
        raise CodeInvalid(f"coupon code format {fmt} is not known here")
    return CouponCode(
        coupon_id=_encode(raw_id),
        campaign_number=number,
        member_tag=tag,
        valid_from=_EPOCH + timedelta(minutes=start),
        valid_until=_EPOCH + timedelta(minutes=until),
    )
