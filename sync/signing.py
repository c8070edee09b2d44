"""Ed25519 signatures on sync requests (by the store's key) and answers (by the cloud's key).

A request's signature covers, one per line::

    aisle-request-v1
    <METHOD>
    <path?query exactly as sent>
    <store id>
    <timestamp, unix seconds>
    <nonce>
    <protocol version>
    <sha256 hex of the body>

and travels in these headers: ``X-Aisle-Store``, ``X-Aisle-Timestamp``, ``X-Aisle-Nonce``,
``X-Aisle-Protocol``, ``X-Aisle-Signature`` (base64). The cloud refuses a timestamp outside its
window and a nonce it has seen within it, so a captured request cannot be played again.

An answer's signature covers ``aisle-response-v1``, the request's nonce, the HTTP status, the
answer's timestamp and the sha256 of the answer body; it travels in ``X-Aisle-Timestamp`` and
``X-Aisle-Signature``. Binding the request's nonce means an old answer (say, a stale pull page)
cannot be replayed to the edge as the answer to a new request.
"""

from __future__ import annotations

import hashlib
import re
import secrets
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey

from shared.untrusted import whole_number
from sync.contract import STORE_ID_PATTERN
from sync.protocol import (
    ERR_BAD_SIGNATURE,
    ERR_STALE,
    ERR_UNSIGNED,
    PROTOCOL_VERSION,
    b64decode,
    b64encode,
)

H_STORE = "X-Aisle-Store"
H_TIMESTAMP = "X-Aisle-Timestamp"
H_NONCE = "X-Aisle-Nonce"
H_PROTOCOL = "X-Aisle-Protocol"
H_SIGNATURE = "X-Aisle-Signature"

REQUEST_DOMAIN = "aisle-request-v1"
RESPONSE_DOMAIN = "aisle-response-v1"
DEFAULT_WINDOW_S = 300

_NONCE = re.compile(r"^[A-Za-z0-9_-]{16,64}$")
_STORE = re.compile(STORE_ID_PATTERN)


class SignatureError(Exception):
    """A request or answer that is unsigned, badly signed or stale; ``code`` is the wire code."""

    def __init__(self, message: str, *, code: str = ERR_BAD_SIGNATURE, **details: object) -> None:
        super().__init__(message)
        self.message = message
        self.code = code
        self.details = details


def new_nonce() -> str:
    """A fresh random nonce (22 URL-safe characters, 128 bits)."""
    return secrets.token_urlsafe(16)


def body_digest(body: bytes) -> str:
    return hashlib.sha256(body).hexdigest()


def request_message(
    *,
    method: str,
    target: str,
    store_id: str,
    timestamp: int,
    nonce: str,
    protocol: int,
    body: bytes,
) -> bytes:
    """The exact bytes a request signature covers."""
    for name, value in (("target", target), ("store_id", store_id), ("nonce", nonce)):
        if "\n" in value or "\r" in value:
            raise ValueError(f"{name} must not contain line breaks")
    lines = (
        REQUEST_DOMAIN,
        method.upper(),
        target,
        store_id,
        str(timestamp),
        nonce,
        str(protocol),
        body_digest(body),
    )
    return "\n".join(lines).encode("utf-8")


def sign_request(
    key: Ed25519PrivateKey,
    *,
    method: str,
    target: str,
    store_id: str,
    body: bytes,
    now: datetime,
    protocol: int = PROTOCOL_VERSION,
    nonce: str | None = None,
) -> dict[str, str]:
    """Headers that authenticate one request; ``target`` is the path and query as sent.

    Build ``target`` with :func:`sync.protocol.request_target` and send exactly that string.
    """
    timestamp = int(now.timestamp())
    nonce = nonce or new_nonce()
    message = request_message(
        method=method,
        target=target,
        store_id=store_id,
        timestamp=timestamp,
        nonce=nonce,
        protocol=protocol,
        body=body,
    )
    return {
        H_STORE: store_id,
        H_TIMESTAMP: str(timestamp),
        H_NONCE: nonce,
        H_PROTOCOL: str(protocol),
        H_SIGNATURE: b64encode(key.sign(message)),
    }


@dataclass(frozen=True, slots=True)
class SignedHeaders:
    """The authentication headers of a request, parsed but not yet verified."""

    store_id: str
    timestamp: int
    nonce: str
    protocol: int
    signature: bytes

    def skew_s(self, now: datetime) -> float:
        """Sender's clock minus ours, in seconds (positive: the sender runs ahead)."""
        return float(self.timestamp) - now.timestamp()


def _header(headers: Mapping[str, str], name: str) -> str | None:
    value = headers.get(name)
    if value is None:
        # Plain dicts are case-sensitive; HTTP headers are not.
        lowered = name.lower()
        value = next((v for k, v in headers.items() if k.lower() == lowered), None)
    return value


def parse_signed_headers(
    headers: Mapping[str, str], *, require_store: bool = True
) -> SignedHeaders:
    """Read the authentication headers; :class:`SignatureError` (``unsigned_request``) if any
    is missing or malformed."""
    names = [H_TIMESTAMP, H_NONCE, H_PROTOCOL, H_SIGNATURE]
    if require_store:
        names.insert(0, H_STORE)
    missing = [n for n in names if not _header(headers, n)]
    if missing:
        raise SignatureError(
            f"unsigned request: missing {', '.join(missing)}", code=ERR_UNSIGNED, missing=missing
        )
    store_id = (_header(headers, H_STORE) or "").strip()
    if store_id and not _STORE.match(store_id):
        raise SignatureError(f"malformed {H_STORE}", code=ERR_UNSIGNED)
    nonce = str(_header(headers, H_NONCE)).strip()
    if not _NONCE.match(nonce):
        raise SignatureError(f"{H_NONCE} must be 16 to 64 URL-safe characters", code=ERR_UNSIGNED)
    timestamp = whole_number(str(_header(headers, H_TIMESTAMP)))
    protocol = whole_number(str(_header(headers, H_PROTOCOL)))
    if timestamp is None or protocol is None:
        raise SignatureError(
            f"{H_TIMESTAMP} and {H_PROTOCOL} must be whole numbers", code=ERR_UNSIGNED
        )
    try:
        signature = b64decode(str(_header(headers, H_SIGNATURE)).strip())
    except ValueError:
        raise SignatureError(f"{H_SIGNATURE} is not base64", code=ERR_BAD_SIGNATURE) from None
    return SignedHeaders(
        store_id=store_id,
        timestamp=timestamp,
        nonce=nonce,
        protocol=protocol,
        signature=signature,
    )


def verify_request(
    public_key: Ed25519PublicKey,
    signed: SignedHeaders,
    *,
    method: str,
    target: str,
    body: bytes,
) -> None:
    """Check the signature over the request; :class:`SignatureError` if it does not verify."""
    message = request_message(
        method=method,
        target=target,
        store_id=signed.store_id,
        timestamp=signed.timestamp,
        nonce=signed.nonce,
        protocol=signed.protocol,
        body=body,
    )
    try:
        public_key.verify(signed.signature, message)
    except InvalidSignature:
        raise SignatureError(
            "the request signature does not verify with the store's key", code=ERR_BAD_SIGNATURE
        ) from None


def check_fresh(signed: SignedHeaders, *, now: datetime, window_s: int) -> float:
    """The sender's clock skew in seconds; :class:`SignatureError` (``stale_request``) when the
    timestamp is further than ``window_s`` from ``now`` either way."""
    skew = signed.skew_s(now)
    if abs(skew) > window_s:
        raise SignatureError(
            f"request timestamp is {skew:+.0f} s from the cloud's clock; the window is "
            f"{window_s} s: check the store's clock",
            code=ERR_STALE,
            skew_s=round(skew, 3),
            window_s=window_s,
        )
    return skew


# --- answers ------------------------------------------------------------------------------------


def response_message(*, request_nonce: str, status: int, timestamp: int, body: bytes) -> bytes:
    """The exact bytes an answer's signature covers."""
    if "\n" in request_nonce or "\r" in request_nonce:
        raise ValueError("nonce must not contain line breaks")
    lines = (RESPONSE_DOMAIN, request_nonce, str(status), str(timestamp), body_digest(body))
    return "\n".join(lines).encode("utf-8")


def sign_response(
    key: Ed25519PrivateKey, *, request_nonce: str, status: int, body: bytes, now: datetime
) -> dict[str, str]:
    """Headers that let the edge check an answer against its pinned cloud key."""
    timestamp = int(now.timestamp())
    message = response_message(
        request_nonce=request_nonce, status=status, timestamp=timestamp, body=body
    )
    return {H_TIMESTAMP: str(timestamp), H_SIGNATURE: b64encode(key.sign(message))}


def verify_response(
    public_key: Ed25519PublicKey,
    *,
    request_nonce: str,
    status: int,
    body: bytes,
    headers: Mapping[str, str],
) -> None:
    """Check an answer's signature with the pinned cloud key; :class:`SignatureError` if it is
    missing or does not verify (then apply nothing from it)."""
    timestamp, signature_text = (
        whole_number(_header(headers, H_TIMESTAMP)),
        _header(headers, H_SIGNATURE),
    )
    if timestamp is None or not signature_text:
        raise SignatureError("the answer is not signed by the cloud", code=ERR_UNSIGNED)
    try:
        signature = b64decode(signature_text.strip())
    except ValueError:
        raise SignatureError("the answer's signature is not base64") from None
    message = response_message(
        request_nonce=request_nonce,
        status=status,
        timestamp=timestamp,
        body=body,
    )
    try:
        public_key.verify(signature, message)
    except InvalidSignature:
        raise SignatureError(
            "the answer's signature does not verify with the pinned cloud key"
        ) from None
