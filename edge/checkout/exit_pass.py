"""Offline-verifiable exit passes for scan-to-buy shoppers, shown as a QR code at the store exit.

A pass is ``<base64url(payload)>.<base64url(signature)>`` (no padding). The payload is a packed
binary record rather than JSON so the token stays near 150 characters and the QR code small
(version 8, 49x49 modules, at error correction M for a UUID sale id). The Ed25519 signature
covers a domain tag, the store id and the payload; the store id itself is not carried in the
token, so a pass from another store simply fails the signature check ("forged") at this store's
exit.

Whether a pass was already used is not checked here: the caller keeps a table of used ``pass_id``s.
"""

from __future__ import annotations

import base64
import binascii
import contextlib
import os
import re
import secrets
import struct
import tempfile
import uuid
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from random import Random
from typing import Protocol

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey

from edge.errors import ExitPassInvalid
from shared.qr import qr_svg

__all__ = [
    "AuditPolicy",
    "AuditSubject",
    "ExitPassClaims",
    "audit_rate_bp",
    "exit_pass_qr_svg",
    "issue_exit_pass",
    "load_or_create_store_key",
    "pick_for_audit",
    "verify_exit_pass",
]

# Packed payload, version 1 (big-endian):
#   version u8 | issued_at u32 | ttl_s u32 | total u64 | item_count u32 | pass_id 9 bytes
#   | sale id kind u8 | sale id (16 UUID bytes, or the UTF-8 text up to the end)
# u32 seconds last until 2106; storing the ttl instead of expires_at saves four bytes.
_VERSION = 1
_HEAD = struct.Struct(">BIIQI")
_PASS_ID_BYTES = 9  # 12 base64url characters, like secrets.token_urlsafe(9)
_SALE_UUID = 0
_SALE_TEXT = 1
_SIGNATURE_BYTES = 64
_DOMAIN = b"aisle.exit-pass.v1\x00"
_U32_MAX = 2**32 - 1
_U64_MAX = 2**64 - 1
# No real pass comes near this; refusing early keeps a hostile scan from costing anything.
_MAX_TOKEN_CHARS = 1024
_B64URL = re.compile(r"[A-Za-z0-9_-]*")


def load_or_create_store_key(path: Path) -> Ed25519PrivateKey:
    """Load the store's Ed25519 signing key from a PEM file, creating it (mode 0600) if missing.

    The file appears atomically and is never overwritten, so two processes starting at once end
    up with the same key instead of each signing with one the other cannot verify.
    """
    path = Path(path)
    if path.exists():
        return _load_key(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    key = Ed25519PrivateKey.generate()
    pem = key.private_bytes(
        encoding=serialization.Encoding.PEM,
        format=serialization.PrivateFormat.PKCS8,
        encryption_algorithm=serialization.NoEncryption(),
    )
    # mkstemp creates the file 0600 from the start, so the key is never readable by others.
    fd, tmp_name = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    tmp = Path(tmp_name)
    try:
        with os.fdopen(fd, "wb") as handle:
            handle.write(pem)
            handle.flush()
            os.fsync(handle.fileno())
        os.chmod(tmp, 0o600)
        try:
            # link() refuses to replace an existing file: if another process won the race, use
            # its key rather than silently swapping the store's key under it.
            os.link(tmp, path)
        except FileExistsError:
            return _load_key(path)
        except OSError:
            # Filesystems without hard links: fall back to an atomic (clobbering) rename.
            os.replace(tmp, path)
        _fsync_dir(path.parent)
    finally:
        with contextlib.suppress(FileNotFoundError):
            tmp.unlink()
    return key


def _load_key(path: Path) -> Ed25519PrivateKey:
    key = serialization.load_pem_private_key(path.read_bytes(), password=None)
    if not isinstance(key, Ed25519PrivateKey):
        raise ValueError(f"{path} does not hold an Ed25519 private key")
    return key


def _fsync_dir(directory: Path) -> None:
    # Make the new directory entry durable; not every platform lets a directory be opened.
    try:
        fd = os.open(directory, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)


@dataclass(frozen=True, slots=True)
class ExitPassClaims:
    """What a verified exit pass says: which sale, how big, and when it stops being valid."""

    store_id: str
    sale_id: str
    total: int
    item_count: int
    issued_at: int
    expires_at: int
    pass_id: str


def issue_exit_pass(
    key: Ed25519PrivateKey,
    *,
    store_id: str,
    sale_id: str,
    total: int,
    item_count: int,
    issued_at: datetime,
    ttl_s: int,
) -> tuple[str, ExitPassClaims]:
    """Sign a short-lived exit pass for a paid sale; returns the token and the claims it carries.

    ``issued_at`` must be timezone-aware and is kept to whole seconds; ``total`` is in minor units.
    """
    if not store_id:
        raise ValueError("store_id must not be empty")
    if not sale_id:
        raise ValueError("sale_id must not be empty")
    _check_int("total", total, 0, _U64_MAX)
    _check_int("item_count", item_count, 0, _U32_MAX)
    _check_int("ttl_s", ttl_s, 1, _U32_MAX)
    issued = _unix_seconds(issued_at, "issued_at")
    _check_int("issued_at", issued, 0, _U32_MAX)

    pass_bytes = secrets.token_bytes(_PASS_ID_BYTES)
    payload = (
        _HEAD.pack(_VERSION, issued, ttl_s, total, item_count) + pass_bytes + _pack_sale_id(sale_id)
    )
    signature = key.sign(_signed_message(store_id, payload))
    token = f"{_b64encode(payload)}.{_b64encode(signature)}"
    claims = ExitPassClaims(
        store_id=store_id,
        sale_id=sale_id,
        total=total,
        item_count=item_count,
        issued_at=issued,
        expires_at=issued + ttl_s,
        pass_id=_b64encode(pass_bytes),
    )
    return token, claims


def verify_exit_pass(
    token: str, public_key: Ed25519PublicKey, *, now: datetime, store_id: str
) -> ExitPassClaims:
    """Check an exit pass offline against this store's public key and the current time.

    Raises :class:`ExitPassInvalid` with ``details["reason"]`` ``"malformed"``, ``"forged"``
    (bad signature or another store's pass) or ``"expired"``. Reuse is the caller's check.
    """
    moment = _unix_seconds_exact(now)
    if not isinstance(token, str) or len(token) > _MAX_TOKEN_CHARS:
        raise _invalid("malformed", "exit pass is not a token")
    parts = token.strip().split(".")
    if len(parts) != 2:
        raise _invalid("malformed", "exit pass does not have two parts")
    payload = _b64decode(parts[0])
    signature = _b64decode(parts[1])
    if not payload or len(signature) != _SIGNATURE_BYTES:
        raise _invalid("malformed", "exit pass has the wrong size")
    # The signature is checked before the payload is parsed, so any change to a genuine token
    # reads as "forged" rather than depending on which byte was touched.
    try:
        public_key.verify(signature, _signed_message(store_id, payload))
    except InvalidSignature:
        raise _invalid("forged", "exit pass signature does not match this store") from None
    claims = _unpack(payload, store_id)
    if moment > claims.expires_at:
        raise _invalid(
            "expired", "exit pass has expired", expires_at=claims.expires_at, pass_id=claims.pass_id
        )
    return claims


def _unpack(payload: bytes, store_id: str) -> ExitPassClaims:
    # Only reached for payloads this store signed, so a failure means a version we do not know.
    if len(payload) < _HEAD.size + _PASS_ID_BYTES + 1:
        raise _invalid("malformed", "exit pass payload is too short")
    version, issued, ttl_s, total, item_count = _HEAD.unpack_from(payload)
    if version != _VERSION:
        raise _invalid("malformed", f"unknown exit pass version {version}")
    offset = _HEAD.size
    pass_bytes = payload[offset : offset + _PASS_ID_BYTES]
    offset += _PASS_ID_BYTES
    kind, raw_sale = payload[offset], payload[offset + 1 :]
    if kind == _SALE_UUID and len(raw_sale) == 16:
        sale_id = str(uuid.UUID(bytes=raw_sale))
    elif kind == _SALE_TEXT and raw_sale:
        try:
            sale_id = raw_sale.decode("utf-8")
        except UnicodeDecodeError:
            raise _invalid("malformed", "exit pass sale id is not text") from None
    else:
        raise _invalid("malformed", "exit pass sale id is malformed")
    return ExitPassClaims(
        store_id=store_id,
        sale_id=sale_id,
        total=total,
        item_count=item_count,
        issued_at=issued,
        expires_at=issued + ttl_s,
        pass_id=_b64encode(pass_bytes),
    )


def _pack_sale_id(sale_id: str) -> bytes:
    # Canonical UUID strings (our sale ids) pack into 16 bytes instead of 36 characters; anything
    # else travels as text, and unpacking gives back exactly the string that was signed.
    try:
        parsed = uuid.UUID(sale_id)
    except ValueError:
        parsed = None
    if parsed is not None and str(parsed) == sale_id:
        return bytes([_SALE_UUID]) + parsed.bytes
    return bytes([_SALE_TEXT]) + sale_id.encode("utf-8")


def _signed_message(store_id: str, payload: bytes) -> bytes:
    # Length-prefix the store id so no (store id, payload) pair can be read as another pair.
    store = store_id.encode("utf-8")
    if len(store) > 0xFFFF:
        raise ValueError("store_id is too long")
    return _DOMAIN + struct.pack(">H", len(store)) + store + payload


def _b64encode(raw: bytes) -> str:
    return base64.urlsafe_b64encode(raw).rstrip(b"=").decode("ascii")


def _b64decode(text: str) -> bytes:
    # Strict: only the URL-safe alphabet, no padding, and only the canonical spelling of the
    # bytes, so a token has exactly one valid text form.
    if not _B64URL.fullmatch(text) or len(text) % 4 == 1:
        raise _invalid("malformed", "exit pass is not base64url")
    try:
        raw = base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))
    except (binascii.Error, ValueError):
        raise _invalid("malformed", "exit pass is not base64url") from None
    if _b64encode(raw) != text:
        raise _invalid("malformed", "exit pass is not canonical base64url")
    return raw


def _invalid(reason: str, message: str, **extra: object) -> ExitPassInvalid:
    return ExitPassInvalid(message, details={"reason": reason, **extra})


def _unix_seconds(moment: datetime, name: str) -> int:
    if moment.tzinfo is None or moment.utcoffset() is None:
        raise ValueError(f"{name} must be timezone-aware")
    return int(moment.timestamp() // 1)


def _unix_seconds_exact(moment: datetime) -> float:
    if moment.tzinfo is None or moment.utcoffset() is None:
        raise ValueError("now must be timezone-aware")
    return moment.timestamp()


def _check_int(name: str, value: int, low: int, high: int) -> None:
    if not isinstance(value, int) or isinstance(value, bool):
        raise TypeError(f"{name} must be an int")
    if not low <= value <= high:
        raise ValueError(f"{name} must be between {low} and {high}, got {value}")


def exit_pass_qr_svg(token: str) -> str:
    """The token as an inline SVG QR code (error correction at least M), ready to embed in HTML."""
    return qr_svg(token, scale=4)


@dataclass(frozen=True, slots=True)
class AuditPolicy:
    """Share of exits sent to a partial rescan, in basis points (300 = 3.00 %).

    Large baskets, by item count or by total (minor units), get a higher rate because a missed
    scan there costs more and is easier to hide.
    """

    base_rate_bp: int = 300
    large_basket_items: int = 20
    large_basket_rate_bp: int = 1500
    large_total: int = 50000
    large_total_rate_bp: int = 1500

    def __post_init__(self) -> None:
        for name in ("base_rate_bp", "large_basket_rate_bp", "large_total_rate_bp"):
            _check_int(name, getattr(self, name), 0, 10_000)
        _check_int("large_basket_items", self.large_basket_items, 0, _U64_MAX)
        _check_int("large_total", self.large_total, 0, _U64_MAX)


class AuditSubject(Protocol):
    """Anything with a basket size, such as :class:`ExitPassClaims`."""

    @property
    def item_count(self) -> int: ...

    @property
    def total(self) -> int: ...


def audit_rate_bp(claims: AuditSubject, policy: AuditPolicy) -> int:
    """The audit rate that applies to a basket: the highest of the rates it qualifies for."""
    rate = policy.base_rate_bp
    if claims.item_count >= policy.large_basket_items:
        rate = max(rate, policy.large_basket_rate_bp)
    if claims.total >= policy.large_total:
        rate = max(rate, policy.large_total_rate_bp)
    return rate


def pick_for_audit(claims: AuditSubject, policy: AuditPolicy, rng: Random) -> bool:
    """Decide at random whether this exit gets a partial rescan; rate 0 never, 10000 always."""
    # Always draw exactly once, so a seeded rng gives the same sequence whatever the rates are.
    return rng.randrange(10_000) < audit_rate_bp(claims, policy)
