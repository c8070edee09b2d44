"""Talking to the cloud over HTTP: every request signed with the store's key, every answer
checked against the cloud key pinned at enrollment, every failure sorted into "try again later"
or "a person must look".

A lost answer, a 502 from a proxy, a timeout or an answer whose signature does not verify are
all :class:`CloudUnavailable`: nothing about them tells the store what happened at the cloud,
so the caller keeps its queue as it is and retries (the push protocol makes retries safe). A
clear refusal from the cloud (revoked store, unsupported protocol version, diverged sequence) is
:class:`CloudRefused`: retrying would only repeat it.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from email.utils import parsedate_to_datetime
from typing import Any

import requests
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey

from sync.keys import load_public_key_b64
from sync.protocol import (
    BATCH_CONTENT_TYPE,
    ERR_NO_RECOVERY,
    ERR_STALE,
    PROTOCOL_VERSION,
    HeldEventsPage,
    ProtocolError,
    PullPage,
    PushResult,
    Recovery,
    RecoveryRequest,
    canonical_json,
    request_target,
)
from sync.signing import H_NONCE, SignatureError, sign_request, verify_response

#: Seconds to connect, seconds to wait for an answer. A push the cloud is still applying when
#: the read times out is retried; the cloud answers the retry from what it already applied.
TIMEOUT = (3.05, 20.0)
#: Statuses that mean "not now" rather than "no": proxies, overload, a cloud restarting.
RETRYABLE_STATUSES = frozenset({408, 425, 429, 500, 502, 503, 504})


class CloudLinkError(Exception):
    """Any failure to get a usable answer from the cloud."""

    def __init__(
        self,
        message: str,
        *,
        code: str,
        status: int | None = None,
        details: dict[str, Any] | None = None,
        retry_after_s: float | None = None,
    ) -> None:
        super().__init__(message)
        self.message = message
        self.code = code
        self.status = status
        self.details = details or {}
        #: What the cloud asked for with ``Retry-After`` (429, 503), in seconds.
        self.retry_after_s = retry_after_s


class CloudUnavailable(CloudLinkError):
    """No trustworthy answer (network, timeout, 5xx, unsigned or forged answer): retry later."""


def retry_after(value: str | None, *, now: datetime) -> float | None:
    """``Retry-After`` in seconds: delta-seconds or an HTTP date (RFC 9110); None if absent."""
    if not value:
        return None
    text = value.strip()
    if text.isascii() and text.isdigit():
        return float(int(text[:9]))
    try:
        moment = parsedate_to_datetime(text)
    except (TypeError, ValueError):
        return None
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    return max(0.0, (moment - now).total_seconds())


class CloudRefused(CloudLinkError):
    """The cloud answered, signed, with a definite refusal: retrying will not help."""


@dataclass(frozen=True, slots=True)
class Answer:
    status: int
    body: dict[str, Any]


def _key_in_answer(content: bytes, field: str) -> Ed25519PublicKey:
    try:
        return load_public_key_b64(str(json.loads(content)[field]))
    except (ValueError, KeyError, TypeError):
        raise CloudUnavailable(
            f"the enrollment answer carries no usable {field}", code="bad_answer"
        ) from None


class CloudClient:
    """One store's signed conversation with its cloud; safe to share between threads."""

    def __init__(
        self,
        base_url: str,
        *,
        store_id: str,
        store_key: Ed25519PrivateKey,
        cloud_key: Ed25519PublicKey | None,
        timeout: tuple[float, float] = TIMEOUT,
        protocol: int = PROTOCOL_VERSION,
        session: requests.Session | None = None,
    ) -> None:
        self.base_url = base_url.rstrip("/")
        self.store_id = store_id
        self.store_key = store_key
        self.cloud_key = cloud_key
        self.timeout = timeout
        self.protocol = protocol
        self.session = session or requests.Session()
        #: Seconds to add to this store's clock to get the cloud's, learnt from the cloud's
        #: signed refusal of a request outside its timestamp window. A store whose clock is off
        #: by days still syncs; the skew is reported (``edge_clock`` in pushes), never trusted.
        self.clock_offset_s = 0.0

    def close(self) -> None:
        self.session.close()

    def call(
        self,
        method: str,
        path: str,
        *,
        now: datetime,
        params: dict[str, Any] | None = None,
        body: bytes = b"",
        headers: dict[str, str] | None = None,
        store_id: str | None = None,
        trust_key_in: str | None = None,
    ) -> Answer:
        """Send one signed request; returns a 2xx answer or raises a :class:`CloudLinkError`.

        A refusal for a stale timestamp corrects this client's clock offset and is retried
        once with a fresh signature.

        ``trust_key_in`` names a field of a successful answer holding the key to check that
        answer with, for enrollment, when no key is pinned yet (the one-time code is what
        makes that first answer trustworthy).
        """
        try:
            return self._call_once(method, path, now, params, body, headers, store_id, trust_key_in)
        except CloudRefused as exc:
            skew = exc.details.get("skew_s")
            if exc.code != ERR_STALE or not isinstance(skew, int | float):
                raise
            self.clock_offset_s -= float(skew)
        return self._call_once(method, path, now, params, body, headers, store_id, trust_key_in)

    def _call_once(
        self,
        method: str,
        path: str,
        now: datetime,
        params: dict[str, Any] | None,
        body: bytes,
        headers: dict[str, str] | None,
        store_id: str | None,
        trust_key_in: str | None,
    ) -> Answer:
        target = request_target(path, params)
        signed = sign_request(
            self.store_key,
            method=method,
            target=target,
            store_id=self.store_id if store_id is None else store_id,
            body=body,
            now=now + timedelta(seconds=self.clock_offset_s),
            protocol=self.protocol,
        )
        try:
            response = self.session.request(
                method,
                self.base_url + target,
                data=body,
                headers={**(headers or {}), **signed},
                timeout=self.timeout,
                allow_redirects=False,
            )
            content = response.content
        except requests.RequestException as exc:
            raise CloudUnavailable(
                f"cloud unreachable: {type(exc).__name__}: {exc}", code="cloud_unreachable"
            ) from None
        status = response.status_code
        check_key = self.cloud_key
        if check_key is None and trust_key_in is not None and 200 <= status < 300:
            check_key = _key_in_answer(content, trust_key_in)
        if check_key is not None:
            try:
                verify_response(
                    check_key,
                    request_nonce=signed[H_NONCE],
                    status=status,
                    body=content,
                    headers=response.headers,
                )
            except SignatureError as exc:
                # A proxy's error page is unsigned too, so this is "no answer", not an attack
                # report; nothing from it is used either way.
                raise CloudUnavailable(
                    f"answer not signed by the pinned cloud key (HTTP {status}): {exc.message}",
                    code="unsigned_answer",
                    status=status,
                ) from None
        try:
            doc = json.loads(content) if content else {}
        except ValueError:
            raise CloudUnavailable(
                f"cloud answered HTTP {status} with a body that is not JSON",
                code="bad_answer",
                status=status,
            ) from None
        if not isinstance(doc, dict):
            raise CloudUnavailable("cloud answer is not a JSON object", code="bad_answer")
        if 200 <= status < 300:
            return Answer(status, doc)
        error = doc.get("error")
        error = error if isinstance(error, dict) else {}
        code = str(error.get("code") or f"http_{status}")
        message = str(error.get("message") or f"HTTP {status}")
        details = error.get("details")
        details = details if isinstance(details, dict) else {}
        kind = CloudUnavailable if status in RETRYABLE_STATUSES else CloudRefused
        raise kind(
            f"{message} ({code})",
            code=code,
            status=status,
            details=details,
            retry_after_s=retry_after(response.headers.get("Retry-After"), now=now),
        )

    # --- the protocol's calls -----------------------------------------------------------------

    def enroll(self, *, code: str, store_public_key: str, now: datetime) -> dict[str, Any]:
        """Register this store's public key with a one-time code (answer not yet pinnable)."""
        body = canonical_json({"code": code, "store_public_key": store_public_key})
        answer = self.call(
            "POST",
            "/api/v1/enroll",
            now=now,
            body=body,
            headers={"Content-Type": "application/json"},
            trust_key_in="cloud_public_key",
        )
        return answer.body

    def push(self, batch: bytes, *, now: datetime) -> PushResult:
        answer = self.call(
            "POST",
            "/api/v1/sync/push",
            now=now,
            body=batch,
            headers={"Content-Type": BATCH_CONTENT_TYPE, "Content-Encoding": "gzip"},
        )
        try:
            return PushResult.from_dict(answer.body)
        except ProtocolError as exc:
            raise CloudUnavailable(exc.message, code="bad_answer") from None

    def pull(self, feed: str, *, cursor: str | None, limit: int, now: datetime) -> PullPage:
        params: dict[str, Any] = {"feed": feed, "limit": limit}
        if cursor:
            params["cursor"] = cursor
        answer = self.call("GET", "/api/v1/sync/pull", now=now, params=params)
        try:
            page = PullPage.from_dict(answer.body)
        except ProtocolError as exc:
            raise CloudUnavailable(exc.message, code="bad_answer") from None
        if page.feed != feed:
            raise CloudUnavailable(f"asked for feed {feed}, got {page.feed}", code="bad_answer")
        return page

    def held_events(self, *, after: int, limit: int, now: datetime) -> HeldEventsPage:
        """The cloud's record of this store's events after seq ``after``."""
        answer = self.call(
            "GET", "/api/v1/sync/events", now=now, params={"after": after, "limit": limit}
        )
        try:
            return HeldEventsPage.from_dict(answer.body)
        except ProtocolError as exc:
            raise CloudUnavailable(exc.message, code="bad_answer") from None

    def request_recovery(self, request: RecoveryRequest, *, now: datetime) -> Recovery:
        """Ask to move onto a new stream (HQ approves)."""
        answer = self.call(
            "POST",
            "/api/v1/sync/recovery",
            now=now,
            body=canonical_json(request.to_dict()),
            headers={"Content-Type": "application/json"},
        )
        return _recovery_of(answer)

    def recovery(self, *, now: datetime) -> Recovery | None:
        """This store's latest recovery at the cloud; None when it never asked."""
        try:
            answer = self.call("GET", "/api/v1/sync/recovery", now=now)
        except CloudRefused as exc:
            if exc.code == ERR_NO_RECOVERY:
                return None
            raise
        return _recovery_of(answer)


def _recovery_of(answer: Answer) -> Recovery:
    try:
        return Recovery.from_dict(answer.body)
    except ProtocolError as exc:
        raise CloudUnavailable(exc.message, code="bad_answer") from None
