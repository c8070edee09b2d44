"""The store-to-cloud wire protocol: versions, canonical JSON, push batches and their answers.

Everything here is a pure function or a frozen value; the edge's sync client and the cloud's
ingest both build on it, so the two sides cannot drift apart.

Push body (``POST /api/v1/sync/push``, ``Content-Type: application/vnd.aisle.batch+json``,
``Content-Encoding: gzip``): the gzip of the canonical JSON of ::

    {"store_id": "S001", "batch_id": "<uuid>", "edge_clock": 1764140000.123,
     "events": [{"seq": 1, "id": "<uuid>", "type": "sale.completed",
                 "aggregate_id": "<sale id>", "payload": {...}, "created_at": "<ISO 8601>"}]}

Events are the store's outbox rows in sequence order; ``payload`` is the event's JSON object.
``edge_clock`` (optional) is the store's own clock reading, unix seconds, when it sent the batch:
the store signs its requests with a clock corrected to the cloud's (so a store whose clock is off
by days can still sync), and reports its raw clock here so the skew is recorded, never trusted.
"""

from __future__ import annotations

import base64
import gzip
import itertools
import json
import zlib
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlencode

from pydantic import BaseModel

from shared.untrusted import UntrustedInputError, loads_json, whole_number

#: The protocol this code speaks.
PROTOCOL_VERSION = 1
#: How many versions back a cloud still serves: an edge one version behind keeps syncing.
VERSIONS_BEHIND_ACCEPTED = 1

BATCH_CONTENT_TYPE = "application/vnd.aisle.batch+json"
#: Bounds of one push batch. The edge sends at most this many events and bytes; the cloud
#: refuses more (413) without reading further.
MAX_BATCH_EVENTS = 1000
MAX_BATCH_BYTES = 2 * 1024 * 1024  # compressed, on the wire
MAX_BATCH_JSON_BYTES = 32 * 1024 * 1024  # once decompressed
MAX_EVENT_ID_CHARS = 64

MAX_PULL_LIMIT = 1000
DEFAULT_PULL_LIMIT = 500

# Error codes of the sync endpoints (``{"error": {"code", "message", "details"}}``).
ERR_UNSIGNED = "unsigned_request"  # 401: a signature header is missing
ERR_BAD_SIGNATURE = "bad_signature"  # 401: the signature does not verify with the store's key
ERR_UNKNOWN_STORE = "unknown_store"  # 401: no enrolled store with that id
ERR_STALE = "stale_request"  # 401: timestamp outside the window; details.skew_s
ERR_REPLAY = "replayed_request"  # 401: nonce already seen in the window
ERR_REVOKED = "store_revoked"  # 403: the store's enrollment was revoked
ERR_STORE_MISMATCH = "store_mismatch"  # 403: the batch names another store than the signer
ERR_VERSION = "unsupported_protocol_version"  # 426: details.accepted, details.current
ERR_BAD_BATCH = "bad_batch"  # 400: not gzip, not JSON, envelope fields wrong
ERR_BATCH_TOO_LARGE = "batch_too_large"  # 413
ERR_DIVERGED = "sequence_diverged"  # 409: same seq, other event: store restored from a backup
ERR_BAD_CURSOR = "bad_cursor"  # 400
ERR_UNKNOWN_FEED = "unknown_feed"  # 404
ERR_ENROLL_INVALID = "enrollment_code_invalid"  # 403: unknown code
ERR_ENROLL_USED = "enrollment_code_used"  # 403
ERR_ENROLL_EXPIRED = "enrollment_code_expired"  # 403


class ProtocolError(ValueError):
    """A message that breaks the protocol; ``code`` is the wire error code."""

    def __init__(self, message: str, *, code: str = ERR_BAD_BATCH) -> None:
        super().__init__(message)
        self.code = code
        self.message = message


# --- versions -----------------------------------------------------------------------------------


def accepted_versions(current: int = PROTOCOL_VERSION) -> frozenset[int]:
    """Versions a cloud at ``current`` accepts: itself and the one before (never below 1)."""
    return frozenset(v for v in range(current - VERSIONS_BEHIND_ACCEPTED, current + 1) if v >= 1)


def parse_version(text: str | None) -> int | None:
    """The ``X-Aisle-Protocol`` header as an int, or None when absent or not a number."""
    return whole_number(text)


def cloud_compatible(cloud_accepts: Iterable[int], mine: int = PROTOCOL_VERSION) -> bool:
    """Whether an edge speaking ``mine`` may talk to a cloud that accepts ``cloud_accepts``."""
    return mine in set(cloud_accepts)


# --- canonical JSON -----------------------------------------------------------------------------


def canonical_json(value: Any) -> bytes:
    """UTF-8 JSON with sorted keys and no spaces: the same value always gives the same bytes."""
    return json.dumps(
        value, sort_keys=True, separators=(",", ":"), ensure_ascii=False, allow_nan=False
    ).encode("utf-8")


def request_target(path: str, params: Mapping[str, Any] | None = None) -> str:
    """``path?query`` with the parameters in sorted order: the exact target to send and sign."""
    if not params:
        return path
    pairs = sorted((k, str(v)) for k, v in params.items() if v is not None)
    return f"{path}?{urlencode(pairs)}" if pairs else path


def b64encode(raw: bytes) -> str:
    """Standard base64 text (with padding), as used for keys and signatures on the wire."""
    return base64.b64encode(raw).decode("ascii")


def b64decode(text: str) -> bytes:
    """Inverse of :func:`b64encode`; raises ``ValueError`` on anything else."""
    return base64.b64decode(text.encode("ascii"), validate=True)


# --- push batches -------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class WireEvent:
    """One outbox event on the wire. ``payload`` and ``created_at`` are checked by the cloud's
    appliers, not here: a bad one is quarantined, it does not block the batch."""

    seq: int
    id: str
    type: str
    aggregate_id: str
    payload: Any
    created_at: Any

    def to_dict(self) -> dict[str, Any]:
        return {
            "seq": self.seq,
            "id": self.id,
            "type": self.type,
            "aggregate_id": self.aggregate_id,
            "payload": self.payload,
            "created_at": self.created_at,
        }


@dataclass(frozen=True, slots=True)
class Batch:
    """A store's push: events sorted by ``seq``, no seq or id twice."""

    store_id: str
    batch_id: str
    events: tuple[WireEvent, ...]
    edge_clock: float | None = None


def encode_batch(
    store_id: str,
    events: Sequence[WireEvent | Mapping[str, Any]],
    *,
    batch_id: str,
    max_events: int = MAX_BATCH_EVENTS,
    max_bytes: int = MAX_BATCH_BYTES,
    edge_clock: float | None = None,
) -> bytes:
    """The gzip-compressed canonical JSON of a batch; refuses one the cloud would refuse."""
    if len(events) > max_events:
        raise ProtocolError(
            f"{len(events)} events in one batch; at most {max_events}", code=ERR_BATCH_TOO_LARGE
        )
    items = [e.to_dict() if isinstance(e, WireEvent) else dict(e) for e in events]
    doc: dict[str, Any] = {"store_id": store_id, "batch_id": batch_id, "events": items}
    if edge_clock is not None:
        doc["edge_clock"] = round(edge_clock, 3)
    body = gzip.compress(canonical_json(doc), compresslevel=6, mtime=0)
    if len(body) > max_bytes:
        raise ProtocolError(
            f"batch is {len(body)} bytes compressed; at most {max_bytes}", code=ERR_BATCH_TOO_LARGE
        )
    return body


@dataclass(frozen=True, slots=True)
class StoredEvent:
    """An outbox row as the store keeps it: the payload already canonical JSON text."""

    seq: int
    id: str
    type: str
    aggregate_id: str
    payload_json: str
    created_at: str


def _text(value: str) -> str:
    return json.dumps(value, ensure_ascii=False)


def encode_stored_batch(
    store_id: str,
    events: Sequence[StoredEvent],
    *,
    batch_id: str,
    edge_clock: float | None = None,
    max_events: int = MAX_BATCH_EVENTS,
    max_bytes: int = MAX_BATCH_BYTES,
) -> bytes:
    """Exactly the bytes of :func:`encode_batch` for these events, built without parsing the
    payloads again: a store draining a three-day backlog spends its time here otherwise.

    ``payload_json`` must be canonical JSON (sorted keys, no spaces), as the outbox stores it.
    """
    if len(events) > max_events:
        raise ProtocolError(
            f"{len(events)} events in one batch; at most {max_events}", code=ERR_BATCH_TOO_LARGE
        )
    # Keys in sorted order, as canonical_json writes them.
    items = ",".join(
        f'{{"aggregate_id":{_text(e.aggregate_id)},"created_at":{_text(e.created_at)},'
        f'"id":{_text(e.id)},"payload":{e.payload_json},"seq":{int(e.seq)},'
        f'"type":{_text(e.type)}}}'
        for e in events
    )
    clock = "" if edge_clock is None else f'"edge_clock":{json.dumps(round(edge_clock, 3))},'
    doc = f'{{"batch_id":{_text(batch_id)},{clock}"events":[{items}],"store_id":{_text(store_id)}}}'
    body = gzip.compress(doc.encode("utf-8"), compresslevel=6, mtime=0)
    if len(body) > max_bytes:
        raise ProtocolError(
            f"batch is {len(body)} bytes compressed; at most {max_bytes}", code=ERR_BATCH_TOO_LARGE
        )
    return body


def _gunzip_bounded(data: bytes, limit: int) -> bytes:
    # A small hostile body can inflate to gigabytes: stop at the limit instead of finding out.
    inflater = zlib.decompressobj(wbits=16 + zlib.MAX_WBITS)
    try:
        out = inflater.decompress(data, limit + 1)
    except zlib.error as exc:
        raise ProtocolError(f"batch body is not gzip: {exc}") from None
    if len(out) > limit or inflater.unconsumed_tail:
        raise ProtocolError(
            f"batch inflates past {limit} bytes", code=ERR_BATCH_TOO_LARGE
        ) from None
    if not inflater.eof:
        raise ProtocolError("batch body is truncated gzip")
    return out


def decode_batch(
    data: bytes,
    *,
    max_events: int = MAX_BATCH_EVENTS,
    max_bytes: int = MAX_BATCH_BYTES,
    max_json_bytes: int = MAX_BATCH_JSON_BYTES,
) -> Batch:
    """Parse and check a push body; raises :class:`ProtocolError` with a wire code."""
    if len(data) > max_bytes:
        raise ProtocolError(
            f"batch is {len(data)} bytes; at most {max_bytes}", code=ERR_BATCH_TOO_LARGE
        )
    try:
        doc = loads_json(_gunzip_bounded(data, max_json_bytes))
    except ProtocolError:
        raise
    except UntrustedInputError as exc:
        raise ProtocolError(f"batch is not JSON: {exc}") from None
    if not isinstance(doc, dict):
        raise ProtocolError("batch must be a JSON object")
    store_id, batch_id, raw_events = doc.get("store_id"), doc.get("batch_id"), doc.get("events")
    if not isinstance(store_id, str) or not store_id:
        raise ProtocolError("batch.store_id must be a non-empty string")
    if not isinstance(batch_id, str) or not batch_id or len(batch_id) > MAX_EVENT_ID_CHARS:
        raise ProtocolError("batch.batch_id must be a non-empty string")
    if not isinstance(raw_events, list):
        raise ProtocolError("batch.events must be a list")
    if len(raw_events) > max_events:
        raise ProtocolError(
            f"{len(raw_events)} events in one batch; at most {max_events}",
            code=ERR_BATCH_TOO_LARGE,
        )
    events = [_event(i, raw) for i, raw in enumerate(raw_events)]
    events.sort(key=lambda e: e.seq)
    for before, after in itertools.pairwise(events):
        if before.seq == after.seq:
            raise ProtocolError(f"seq {after.seq} appears twice in the batch")
    if len({e.id for e in events}) != len(events):
        raise ProtocolError("an event id appears twice in the batch")
    edge_clock = doc.get("edge_clock")
    if edge_clock is not None and (
        not isinstance(edge_clock, int | float) or isinstance(edge_clock, bool)
    ):
        raise ProtocolError("batch.edge_clock must be a number of unix seconds")
    return Batch(
        store_id=store_id,
        batch_id=batch_id,
        events=tuple(events),
        edge_clock=None if edge_clock is None else float(edge_clock),
    )


def _event(index: int, raw: Any) -> WireEvent:
    if not isinstance(raw, dict):
        raise ProtocolError(f"events[{index}] must be an object")
    seq, event_id = raw.get("seq"), raw.get("id")
    if not isinstance(seq, int) or isinstance(seq, bool) or seq < 1:
        raise ProtocolError(f"events[{index}].seq must be a positive integer")
    if not isinstance(event_id, str) or not event_id or len(event_id) > MAX_EVENT_ID_CHARS:
        raise ProtocolError(f"events[{index}].id must be a string of 1 to 64 characters")
    kind, aggregate = raw.get("type"), raw.get("aggregate_id")
    return WireEvent(
        seq=seq,
        id=event_id,
        type=kind if isinstance(kind, str) else "",
        aggregate_id=aggregate if isinstance(aggregate, str) else "",
        payload=raw.get("payload"),
        created_at=raw.get("created_at"),
    )


# --- answers ------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class QuarantineNotice:
    """The cloud's word on an event it could not apply: recorded with its reason at the cloud,
    the queue moves on; the store keeps the event in its own quarantine (QuarantinedEvent)."""

    seq: int
    event_id: str
    type: str
    reason: str

    def to_dict(self) -> dict[str, Any]:
        return {
            "seq": self.seq,
            "event_id": self.event_id,
            "type": self.type,
            "reason": self.reason,
        }


@dataclass(frozen=True, slots=True)
class PushResult:
    """The cloud's answer to a push.

    ``acked_seq`` is the store's high-water sequence at the cloud after this batch: every event
    up to it is applied (or quarantined) exactly once, and the edge may mark them sent.
    ``resume_from`` (always ``acked_seq + 1``) is the next seq the cloud wants; ``gap_at`` is the
    first seq of the batch it could not take because an earlier one is missing.
    """

    acked_seq: int
    resume_from: int
    applied: int
    duplicates: int
    quarantined: tuple[QuarantineNotice, ...] = ()
    gap_at: int | None = None
    server_time: str = ""
    clock_skew_s: float = 0.0

    def to_dict(self) -> dict[str, Any]:
        return {
            "acked_seq": self.acked_seq,
            "resume_from": self.resume_from,
            "applied": self.applied,
            "duplicates": self.duplicates,
            "quarantined": [q.to_dict() for q in self.quarantined],
            "gap_at": self.gap_at,
            "server_time": self.server_time,
            "clock_skew_s": self.clock_skew_s,
        }

    @classmethod
    def from_dict(cls, doc: Mapping[str, Any]) -> PushResult:
        """Read the cloud's JSON answer; raises :class:`ProtocolError` if it is malformed."""
        try:
            return cls(
                acked_seq=int(doc["acked_seq"]),
                resume_from=int(doc["resume_from"]),
                applied=int(doc["applied"]),
                duplicates=int(doc["duplicates"]),
                quarantined=tuple(
                    QuarantineNotice(
                        int(q["seq"]), str(q["event_id"]), str(q["type"]), str(q["reason"])
                    )
                    for q in doc.get("quarantined", [])
                ),
                gap_at=None if doc.get("gap_at") is None else int(doc["gap_at"]),
                server_time=str(doc.get("server_time", "")),
                clock_skew_s=float(doc.get("clock_skew_s", 0.0)),
            )
        except (KeyError, TypeError, ValueError) as exc:
            raise ProtocolError(f"malformed push answer: {exc}", code="bad_answer") from None


@dataclass(frozen=True, slots=True)
class FeedChange:
    """One changed thing in a feed: its key and its current data at the cloud."""

    key: str
    data: dict[str, Any]

    def to_dict(self) -> dict[str, Any]:
        return {"key": self.key, "data": self.data}


#: Why a feed answers with a snapshot rather than its log.
SNAPSHOT_FIRST_PULL = "first_pull"  # no cursor, and the log no longer holds everything
SNAPSHOT_PRUNED = "history_pruned"  # the cursor is older than the history kept
SNAPSHOT_NEW_EPOCH = (
    "new_epoch"  # the cloud's database was restored (or the cursor predates epochs)
)
SNAPSHOT_UNKNOWN_POSITION = "unknown_position"  # the cursor stands on a change this cloud lacks
SNAPSHOT_REASONS = (
    SNAPSHOT_FIRST_PULL,
    SNAPSHOT_PRUNED,
    SNAPSHOT_NEW_EPOCH,
    SNAPSHOT_UNKNOWN_POSITION,
)


def _snapshot_reason(value: Any) -> str | None:
    """A known reason, "other" for one a newer cloud added, or None."""
    if value is None:
        return None
    return value if value in SNAPSHOT_REASONS else "other"


@dataclass(frozen=True, slots=True)
class PullPage:
    """A page of a feed. Apply ``changes`` and store ``next_cursor`` in one local transaction.

    ``snapshot`` is true while the cloud serves a paged snapshot; the edge keeps pulling with
    ``next_cursor`` as usual and the feed continues from the log once the snapshot ends. The
    snapshot's first page says why in ``snapshot_reason`` (``SNAPSHOT_REASONS``).
    """

    feed: str
    changes: tuple[FeedChange, ...]
    next_cursor: str
    has_more: bool
    snapshot: bool = False
    snapshot_reason: str | None = None
    extra: dict[str, Any] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        return {
            "feed": self.feed,
            "changes": [c.to_dict() for c in self.changes],
            "next_cursor": self.next_cursor,
            "has_more": self.has_more,
            "snapshot": self.snapshot,
            "snapshot_reason": self.snapshot_reason,
            **self.extra,
        }

    @classmethod
    def from_dict(cls, doc: Mapping[str, Any]) -> PullPage:
        """Read the cloud's JSON page; raises :class:`ProtocolError` if it is malformed."""
        try:
            changes = tuple(FeedChange(str(c["key"]), dict(c["data"])) for c in doc["changes"])
            return cls(
                feed=str(doc["feed"]),
                changes=changes,
                next_cursor=str(doc["next_cursor"]),
                has_more=bool(doc["has_more"]),
                snapshot=bool(doc.get("snapshot", False)),
                snapshot_reason=_snapshot_reason(doc.get("snapshot_reason")),
            )
        except (KeyError, TypeError, ValueError) as exc:
            raise ProtocolError(f"malformed pull page: {exc}", code="bad_answer") from None


# --- recovery of a restored or replaced store ----------------------------------------------------
#
# A store whose database went back in time (restored from a backup, or new hardware) holds fewer
# events than the cloud has from it, and its new events take numbers the cloud already gave to
# others. It stops pushing (ERR_DIVERGED) until it is moved onto a new stream:
#
# 1. it finds how far it and the cloud agree, comparing its outbox with the cloud's record of its
#    events (``GET /api/v1/sync/events?after=<seq>&limit=<n>`` -> :class:`HeldEventsPage`);
# 2. it asks to recover (``POST /api/v1/sync/recovery`` with :class:`RecoveryRequest`); the
#    cloud records the request and what it holds that the store does not (:class:`Recovery`);
# 3. HQ approves (``POST /api/v1/stores/<id>/recovery/approve``), which fixes ``base_seq``, the
#    cloud's last seq of the old stream, and lets the store push again;
# 4. the store (``GET /api/v1/sync/recovery``) renumbers its events after ``agreed_seq`` to
#    follow ``base_seq``, in one local transaction, and pushes them as new events. Nothing is
#    merged: what the cloud holds past ``agreed_seq`` stays, and is reported on both sides.

MAX_HELD_EVENTS_PAGE = 5000
ERR_NO_RECOVERY = "no_recovery"  # 404: the store has not asked to recover
ERR_RECOVERY_NOT_NEEDED = "recovery_not_needed"  # 409: the store and the cloud agree
RECOVERY_PENDING = "pending"
RECOVERY_APPROVED = "approved"


@dataclass(frozen=True, slots=True)
class HeldEventsPage:
    """The cloud's record of a store's events after a seq: ``(seq, event_id)`` in seq order."""

    events: tuple[tuple[int, str], ...]
    high_water_seq: int
    has_more: bool

    def to_dict(self) -> dict[str, Any]:
        return {
            "events": [{"seq": seq, "event_id": event_id} for seq, event_id in self.events],
            "high_water_seq": self.high_water_seq,
            "has_more": self.has_more,
        }

    @classmethod
    def from_dict(cls, doc: Mapping[str, Any]) -> HeldEventsPage:
        try:
            return cls(
                events=tuple((int(e["seq"]), str(e["event_id"])) for e in doc["events"]),
                high_water_seq=int(doc["high_water_seq"]),
                has_more=bool(doc["has_more"]),
            )
        except (KeyError, TypeError, ValueError) as exc:
            raise ProtocolError(f"malformed events page: {exc}", code="bad_answer") from None


@dataclass(frozen=True, slots=True)
class RecoveryRequest:
    """A store asking to move onto a new stream: it agrees with the cloud up to ``agreed_seq``
    and its outbox ends at ``outbox_last_seq``."""

    agreed_seq: int
    outbox_last_seq: int

    def to_dict(self) -> dict[str, Any]:
        return {"agreed_seq": self.agreed_seq, "outbox_last_seq": self.outbox_last_seq}


@dataclass(frozen=True, slots=True)
class CloudOnlySale:
    """A sale the cloud holds from the store that the store itself no longer has."""

    id: str
    number: str
    total: int
    created_at: str

    def to_dict(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "number": self.number,
            "total": self.total,
            "created_at": self.created_at,
        }


@dataclass(frozen=True, slots=True)
class Recovery:
    """A store's request to recover and, once HQ approved it, where its new stream starts.

    ``cloud_only_*`` describe what the cloud holds after ``agreed_seq`` (events the store no
    longer has: sales it made after its backup, for one); ``cloud_only_sales`` lists the first
    hundred. ``highest_sale_number`` is the last receipt number the cloud saw from the store, so
    that its next sales do not reuse numbers already on receipts.
    """

    id: str
    store_id: str
    status: str
    stream: int
    agreed_seq: int
    outbox_last_seq: int
    cloud_high_water_seq: int
    base_seq: int | None
    cloud_only_events: int
    cloud_only_sales_count: int
    cloud_only_sales_total: int
    cloud_only_sales: tuple[CloudOnlySale, ...]
    highest_sale_number: str | None
    requested_at: str
    approved_at: str | None
    approved_by: str | None

    def to_dict(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "store_id": self.store_id,
            "status": self.status,
            "stream": self.stream,
            "agreed_seq": self.agreed_seq,
            "outbox_last_seq": self.outbox_last_seq,
            "cloud_high_water_seq": self.cloud_high_water_seq,
            "base_seq": self.base_seq,
            "cloud_only_events": self.cloud_only_events,
            "cloud_only_sales_count": self.cloud_only_sales_count,
            "cloud_only_sales_total": self.cloud_only_sales_total,
            "cloud_only_sales": [s.to_dict() for s in self.cloud_only_sales],
            "highest_sale_number": self.highest_sale_number,
            "requested_at": self.requested_at,
            "approved_at": self.approved_at,
            "approved_by": self.approved_by,
        }

    @classmethod
    def from_dict(cls, doc: Mapping[str, Any]) -> Recovery:
        try:
            base = doc["base_seq"]
            return cls(
                id=str(doc["id"]),
                store_id=str(doc["store_id"]),
                status=str(doc["status"]),
                stream=int(doc["stream"]),
                agreed_seq=int(doc["agreed_seq"]),
                outbox_last_seq=int(doc["outbox_last_seq"]),
                cloud_high_water_seq=int(doc["cloud_high_water_seq"]),
                base_seq=None if base is None else int(base),
                cloud_only_events=int(doc["cloud_only_events"]),
                cloud_only_sales_count=int(doc["cloud_only_sales_count"]),
                cloud_only_sales_total=int(doc["cloud_only_sales_total"]),
                cloud_only_sales=tuple(
                    CloudOnlySale(
                        str(s["id"]), str(s["number"]), int(s["total"]), str(s["created_at"])
                    )
                    for s in doc["cloud_only_sales"]
                ),
                highest_sale_number=(
                    None
                    if doc.get("highest_sale_number") is None
                    else str(doc["highest_sale_number"])
                ),
                requested_at=str(doc["requested_at"]),
                approved_at=None if doc.get("approved_at") is None else str(doc["approved_at"]),
                approved_by=None if doc.get("approved_by") is None else str(doc["approved_by"]),
            )
        except (KeyError, TypeError, ValueError) as exc:
            raise ProtocolError(f"malformed recovery: {exc}", code="bad_answer") from None


# The wire shape of a recovery as pydantic models, for the OpenAPI documents: the cloud answers
# :meth:`Recovery.to_dict`, and the edge shows the sales only the cloud holds in its own status.


class CloudOnlySaleOut(BaseModel):
    id: str
    number: str
    total: int
    created_at: str


class RecoveryOut(BaseModel):
    """``sync.protocol.Recovery``."""

    id: str
    store_id: str
    status: str
    stream: int
    agreed_seq: int
    outbox_last_seq: int
    cloud_high_water_seq: int
    base_seq: int | None
    cloud_only_events: int
    cloud_only_sales_count: int
    cloud_only_sales_total: int
    cloud_only_sales: list[CloudOnlySaleOut]
    highest_sale_number: str | None
    requested_at: str
    approved_at: str | None
    approved_by: str | None
