"""Enrollment, pushing the outbox and pulling the cloud's feeds.

The rules that make it safe, whatever fails and whenever a process dies:

* An event is marked sent only after the cloud's *signed* answer says it holds it
  (``acked_seq``), in one local transaction with the new high-water mark. A crash before that
  commit resends the batch; the cloud recognises every event by ``(store, seq, id)`` and answers
  from what it already applied, so nothing is applied twice.
* Batches are taken oldest first by sequence number and bounded in events and bytes.
* If the cloud says it holds less than the store thinks it sent (the cloud was restored from a
  backup), the store rewinds and sends again from the cloud's mark; if the cloud holds other
  events under this store's numbers (the *store* was restored from a backup), pushing halts with
  ``sequence_diverged`` for a person to sort out. Nothing is ever merged silently.
* A pulled page is applied in one transaction together with the feed's new cursor: a crash
  mid-apply leaves the old cursor and the old data, and the page is pulled again.
* Events the cloud quarantines are recorded here with the cloud's reason and the queue moves on.
"""

from __future__ import annotations

import json
import random
from collections.abc import Iterable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import select, update
from sqlalchemy.orm import Session

from edge.catalog.models import Barcode, Product
from edge.db import Database
from edge.errors import Conflict, Unprocessable
from edge.outbox.models import OutboxEvent
from edge.outbox.service import outbox_status
from edge.settings import EdgeSettings
from edge.sync_client.models import (
    CloudLink,
    FeedCursor,
    QuarantinedEvent,
    StoreSetting,
    SyncState,
)
from edge.sync_client.transport import CloudClient, CloudError, CloudRefused
from sync import keys
from sync.faults import fault_point
from sync.ids import new_id
from sync.protocol import (
    ERR_DIVERGED,
    FEEDS,
    PROTOCOL_VERSION,
    ProtocolError,
    PullPage,
    PushResult,
    StoredEvent,
    cloud_compatible,
    encode_stored_batch,
)

#: Refusals that stop pushing until a person acts (re-enrol, upgrade, investigate a restore).
HALTING_CODES = frozenset(
    {ERR_DIVERGED, "store_revoked", "unsupported_protocol_version", "unknown_store"}
)
#: Pages of one feed pulled in one run; the next run continues from the cursor.
MAX_PAGES_PER_RUN = 50


# --- the link -------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Link:
    cloud_url: str
    store_id: str
    cloud_public_key: str
    protocol_version: int
    max_batch_events: int
    max_batch_bytes: int


def link_of(db: Database) -> Link | None:
    """The cloud this store is enrolled with, if any."""
    with db.read() as session:
        row = session.get(CloudLink, 1)
        if row is None:
            return None
        return Link(
            cloud_url=row.cloud_url,
            store_id=row.store_id,
            cloud_public_key=row.cloud_public_key,
            protocol_version=row.protocol_version,
            max_batch_events=row.max_batch_events,
            max_batch_bytes=row.max_batch_bytes,
        )


def client_for(settings: EdgeSettings, link: Link) -> CloudClient:
    """A signed client for the enrolled cloud, with the pinned key."""
    return CloudClient(
        link.cloud_url,
        store_id=link.store_id,
        store_key=keys.load_private_key(settings.sync_key_path),
        cloud_key=keys.load_public_key_b64(link.cloud_public_key),
        timeout=(settings.sync.connect_timeout_s, settings.sync.read_timeout_s),
    )


@dataclass(frozen=True, slots=True)
class Enrollment:
    store_id: str
    cloud_url: str
    cloud_public_key: str
    protocol_version: int


def enroll(
    settings: EdgeSettings,
    db: Database,
    *,
    cloud_url: str,
    code: str,
    now: datetime,
    client: CloudClient | None = None,
) -> Enrollment:
    """Create this store's sync key, register it with the cloud and pin the cloud's key."""
    if link_of(db) is not None:
        raise Conflict(
            "this store is already enrolled with a cloud", code="already_enrolled", details={}
        )
    path = settings.sync_key_path
    # A key left by an enrollment that failed half-way is reused: the cloud never saw it work.
    key = keys.load_private_key(path) if path.exists() else keys.generate_private_key()
    if not path.exists():
        keys.write_private_key(path, key)
    public = keys.public_key_b64(key.public_key())
    client = client or CloudClient(
        cloud_url, store_id=settings.store.id, store_key=key, cloud_key=None
    )
    answer = client.enroll(code=code, store_public_key=public, now=now)
    try:
        cloud_key_text = str(answer["cloud_public_key"])
        keys.load_public_key_b64(cloud_key_text)  # checked by the transport too
        store_id = str(answer["store_id"])
        accepted = [int(v) for v in answer.get("accepted_protocol_versions", [])]
    except (KeyError, TypeError, ValueError) as exc:
        raise Unprocessable(f"the cloud's enrollment answer is malformed: {exc}") from None
    if store_id != settings.store.id:
        raise Conflict(
            f"the code enrolls store {store_id}, but this server is store {settings.store.id}",
            code="store_mismatch",
            details={"cloud_store_id": store_id, "store_id": settings.store.id},
        )
    if not cloud_compatible(accepted):
        raise Conflict(
            f"the cloud speaks protocol versions {accepted}; this store speaks "
            f"{PROTOCOL_VERSION}: upgrade the older side",
            code="unsupported_protocol_version",
            details={"accepted": accepted, "current": PROTOCOL_VERSION},
        )
    with db.write() as uow:
        uow.session.add(
            CloudLink(
                id=1,
                cloud_url=cloud_url.rstrip("/"),
                store_id=store_id,
                cloud_public_key=cloud_key_text,
                protocol_version=int(answer.get("protocol_version", PROTOCOL_VERSION)),
                max_batch_events=int(answer.get("max_batch_events", 1000)),
                max_batch_bytes=int(answer.get("max_batch_bytes", 2 * 1024 * 1024)),
                enrolled_at=now,
            )
        )
        _state(uow.session)
        uow.commit()
    return Enrollment(store_id, cloud_url, cloud_key_text, PROTOCOL_VERSION)


def _state(session: Session) -> SyncState:
    state = session.get(SyncState, 1)
    if state is None:
        state = SyncState(id=1, acked_seq=0, consecutive_failures=0)
        session.add(state)
        session.flush()
    return state


# --- push -----------------------------------------------------------------------------------


@dataclass
class PushReport:
    batches: int = 0
    sent: int = 0
    acked_seq: int = 0
    quarantined: list[dict[str, Any]] = field(default_factory=list)
    rewound_to: int | None = None


@dataclass(frozen=True, slots=True)
class _Batch:
    """A push batch ready to send: its body and the sequence numbers it carries."""

    body: bytes
    first_seq: int
    last_seq: int
    count: int


def _prepare(db: Database, link: Link, after_seq: int, limit: int, now: datetime) -> _Batch | None:
    """The oldest events after ``after_seq``, as one batch within the cloud's bounds."""
    with db.raw_read() as tx:
        rows = tx.all(
            "SELECT seq, id, type, aggregate_id, payload, created_at FROM outbox "
            "WHERE seq > ? ORDER BY seq LIMIT ?",
            (after_seq, limit),
        )
    if not rows:
        return None
    events = [
        StoredEvent(
            seq=row["seq"],
            id=row["id"],
            type=row["type"],
            aggregate_id=row["aggregate_id"],
            payload_json=row["payload"],  # stored canonical: sent as it is, not re-encoded
            # Stored as naive UTC "YYYY-MM-DD HH:MM:SS.ffffff"; sent as ISO 8601 with offset.
            created_at=row["created_at"].replace(" ", "T") + "+00:00",
        )
        for row in rows
    ]
    count = len(events)
    while True:
        try:
            body = encode_stored_batch(
                link.store_id,
                events[:count],
                batch_id=new_id(),
                max_bytes=link.max_batch_bytes,
                edge_clock=now.timestamp(),  # this store's own clock, for the skew report
            )
            return _Batch(body, events[0].seq, events[count - 1].seq, count)
        except ProtocolError:
            if count == 1:
                raise
            count = max(1, count // 2)


def _take_answer(db: Database, batch: _Batch, result: PushResult, now: datetime) -> int:
    """Record what the cloud says it holds, in one transaction; returns its mark."""
    with db.write() as uow:
        session = uow.session
        state = _state(session)
        if result.acked_seq < state.acked_seq:
            # The cloud holds less than it once acknowledged: it was restored from a backup.
            # Send again from its mark; it applies each event once whatever we resend.
            session.execute(
                update(OutboxEvent).where(OutboxEvent.seq > result.acked_seq).values(pushed_at=None)
            )
            state.last_error = (
                f"the cloud's mark went back from {state.acked_seq} to {result.acked_seq}; "
                "resending from there"
            )
            state.last_error_code = "cloud_behind"
            state.last_error_at = now
        elif result.acked_seq > batch.last_seq and result.acked_seq > state.acked_seq:
            # It acknowledges events we never sent in this batch: only a store restored from an
            # old backup (numbers reused) can cause this. Do not mark anything; stop and tell.
            state.halted_code = ERR_DIVERGED
            state.last_error = (
                f"the cloud holds events up to seq {result.acked_seq} but this store's outbox "
                f"ends at {batch.last_seq}: was the store database restored from a backup?"
            )
            state.last_error_code = ERR_DIVERGED
            state.last_error_at = now
            uow.commit()
            raise CloudRefused(state.last_error, code=ERR_DIVERGED)
        session.execute(
            update(OutboxEvent)
            .where(OutboxEvent.seq <= result.acked_seq, OutboxEvent.pushed_at.is_(None))
            .values(pushed_at=now)
        )
        fault_point("edge.push.mid_ack")
        for q in result.quarantined:
            session.merge(
                QuarantinedEvent(
                    seq=q.seq, event_id=q.event_id, type=q.type, reason=q.reason, reported_at=now
                )
            )
        state.acked_seq = result.acked_seq
        state.last_push_at = now
        state.clock_skew_s = result.clock_skew_s
        _healthy(state, now)
        uow.commit()
    return result.acked_seq


def drain(
    db: Database,
    client: CloudClient,
    link: Link,
    *,
    batch_events: int,
    now_fn: Any,
    max_batches: int = 1_000_000,
) -> PushReport:
    """Push batch after batch, oldest first, until the outbox is empty (or ``max_batches``).

    The next batch is read and compressed while the current one is on its way (the cloud's
    answer is most of a batch's time), on the assumption that the cloud takes the current one
    whole; when it does not (a gap, a cloud restored from a backup) the prepared batch is
    dropped and the next starts from the cloud's mark. Raises :class:`CloudError` when the
    cloud gives no usable answer or refuses; what was acknowledged until then stays recorded.
    """
    report = PushReport()
    limit = max(1, min(batch_events, link.max_batch_events))
    with db.read() as session:
        acked = _state(session).acked_seq
    with ThreadPoolExecutor(max_workers=1, thread_name_prefix="sync-prepare") as pool:
        upcoming = pool.submit(_prepare, db, link, acked, limit, now_fn())
        while report.batches < max_batches:
            batch = upcoming.result()
            if batch is None:
                break
            upcoming = pool.submit(_prepare, db, link, batch.last_seq, limit, now_fn())
            result = client.push(batch.body, now=now_fn())
            fault_point("edge.push.after_answer")
            acked = _take_answer(db, batch, result, now_fn())
            report.batches += 1
            report.sent += batch.count
            report.quarantined.extend(q.to_dict() for q in result.quarantined)
            if acked != batch.last_seq:
                upcoming.result()  # prepared from the wrong place: start again from the mark
                report.rewound_to = acked
                upcoming = pool.submit(_prepare, db, link, acked, limit, now_fn())
    report.acked_seq = acked
    return report


# --- pull -----------------------------------------------------------------------------------


def _cursor(session: Session, feed: str) -> FeedCursor | None:
    return session.get(FeedCursor, feed)


def pull_feed(
    db: Database, client: CloudClient, feed: str, *, now: datetime, limit: int = 500
) -> int:
    """Pull ``feed`` until the cloud has no more; returns the number of changes applied."""
    applied = 0
    for _ in range(MAX_PAGES_PER_RUN):
        with db.read() as session:
            row = _cursor(session, feed)
            cursor = row.cursor if row else None
        page = client.pull(feed, cursor=cursor, limit=limit, now=now)
        apply_page(db, page, previous_cursor=cursor, now=now)
        applied += len(page.changes)
        if not page.has_more:
            break
    return applied


def apply_page(db: Database, page: PullPage, *, previous_cursor: str | None, now: datetime) -> None:
    """Apply one page and move the feed's cursor, in one transaction."""
    with db.write() as uow:
        session = uow.session
        row = _cursor(session, page.feed)
        if (row.cursor if row else None) != previous_cursor:
            # Another process applied a page meanwhile; this one would move the cursor back.
            return
        if page.feed == "catalog":
            _apply_catalog(session, (c.data for c in page.changes), now)
        elif page.feed == "prices":
            _apply_prices(session, (c.data for c in page.changes), now)
        elif page.feed == "store_settings":
            _apply_store_settings(session, (c.data for c in page.changes), now)
        fault_point("edge.pull.mid_apply")
        if row is None:
            row = FeedCursor(feed=page.feed, cursor="", changes_applied=0, updated_at=now)
            session.add(row)
        row.cursor = page.next_cursor
        row.in_snapshot = page.snapshot
        row.changes_applied = (row.changes_applied or 0) + len(page.changes)
        row.updated_at = now
        state = _state(session)
        state.last_pull_at = now
        _healthy(state, now)
        uow.commit()


def _apply_catalog(session: Session, items: Iterable[dict[str, Any]], now: datetime) -> None:
    for data in items:
        sku = str(data["sku"])
        product = session.get(Product, sku)
        if product is None:
            product = Product(sku=sku)
            session.add(product)
        product.name = str(data["name"])
        product.unit_price = int(data["unit_price"])
        product.tax_rate_bp = int(data["tax_rate_bp"])
        product.category = str(data.get("category") or "")
        product.sold_by = str(data["sold_by"])
        product.age_restricted = bool(data.get("age_restricted", False))
        plu = data.get("plu")
        if plu:
            # The cloud is the master: a PLU moved to this product leaves its old owner.
            session.execute(
                update(Product).where(Product.plu == str(plu), Product.sku != sku).values(plu=None)
            )
        product.plu = str(plu) if plu else None
        product.updated_at = now
        session.flush()
        wanted = {str(g) for g in data.get("barcodes", [])}
        for barcode in session.execute(select(Barcode).where(Barcode.sku == sku)).scalars():
            if barcode.gtin not in wanted:
                session.delete(barcode)
        for gtin in wanted:
            owned = session.get(Barcode, gtin)
            if owned is None:
                session.add(Barcode(gtin=gtin, sku=sku))
            elif owned.sku != sku:
                owned.sku = sku
        session.flush()


def _apply_prices(session: Session, items: Iterable[dict[str, Any]], now: datetime) -> None:
    for data in items:
        product = session.get(Product, str(data["sku"]))
        if product is None:
            continue  # the catalog feed brings the product with its price
        product.unit_price = int(data["unit_price"])
        product.updated_at = now


def _apply_store_settings(session: Session, items: Iterable[dict[str, Any]], now: datetime) -> None:
    for data in items:
        for key, value in data.items():
            session.merge(StoreSetting(key=str(key), value=json.dumps(value), updated_at=now))


def pull_all(db: Database, client: CloudClient, *, now: datetime) -> dict[str, int]:
    return {feed: pull_feed(db, client, feed, now=now) for feed in FEEDS}


# --- health ---------------------------------------------------------------------------------


def _healthy(state: SyncState, now: datetime) -> None:
    state.last_contact_at = now
    state.consecutive_failures = 0
    state.next_attempt_at = None
    state.halted_code = None


def backoff_s(failures: int, *, initial: float, cap: float, rng: random.Random) -> float:
    """Seconds to wait after ``failures`` failures in a row: exponential, capped, "full jitter"
    between half and all of it, so a fleet of stores does not return in lockstep."""
    ceiling = min(cap, initial * (2 ** max(0, failures - 1)))
    return ceiling * (0.5 + rng.random() / 2)


def record_failure(
    db: Database,
    error: CloudError,
    *,
    now: datetime,
    initial_s: float,
    max_s: float,
    rng: random.Random,
) -> float:
    """Note a failed exchange; returns the backoff before the next attempt."""
    with db.write() as uow:
        state = _state(uow.session)
        state.consecutive_failures += 1
        wait = backoff_s(state.consecutive_failures, initial=initial_s, cap=max_s, rng=rng)
        state.next_attempt_at = now + timedelta(seconds=wait)
        state.last_error = error.message
        state.last_error_code = error.code
        state.last_error_at = now
        if isinstance(error, CloudRefused) and error.code in HALTING_CODES:
            state.halted_code = error.code
        uow.commit()
    return wait


def may_attempt(db: Database, now: datetime) -> bool:
    """Whether the backoff allows talking to the cloud now."""
    with db.read() as session:
        state = session.get(SyncState, 1)
        return state is None or state.next_attempt_at is None or state.next_attempt_at <= now


def status(db: Database, now: datetime) -> dict[str, Any]:
    """The sync queue and link health, as ``GET /api/v1/sync/status`` shows them."""
    with db.read() as session:
        outbox = outbox_status(session)
        link = session.get(CloudLink, 1)
        state = session.get(SyncState, 1)
        quarantined = session.execute(
            select(QuarantinedEvent).order_by(QuarantinedEvent.seq.desc()).limit(20)
        ).scalars()
        quarantine = [
            {"seq": q.seq, "event_id": q.event_id, "type": q.type, "reason": q.reason}
            for q in quarantined
        ]
        cursors = {
            c.feed: {"changes_applied": c.changes_applied, "in_snapshot": c.in_snapshot}
            for c in session.execute(select(FeedCursor)).scalars()
        }
    age = None
    if outbox.oldest_pending_at is not None:
        age = max(0.0, round((now - outbox.oldest_pending_at).total_seconds(), 3))

    def iso(moment: datetime | None) -> str | None:
        return moment.isoformat() if moment else None

    online = bool(
        state
        and state.consecutive_failures == 0
        and state.last_contact_at is not None
        and state.halted_code is None
    )
    error = None
    if state and state.last_error and (state.consecutive_failures or state.halted_code):
        error = {
            "code": state.last_error_code,
            "message": state.last_error,
            "at": iso(state.last_error_at),
        }
    return {
        "online": online,
        "cloud": link.cloud_url if link else None,
        "enrolled": link is not None,
        "outbox_pending": outbox.pending,
        "outbox_last_seq": outbox.last_seq,
        "acked_seq": state.acked_seq if state else 0,
        "oldest_pending_age_s": age,
        "last_push_at": iso(state.last_push_at) if state else None,
        "last_pull_at": iso(state.last_pull_at) if state else None,
        "last_contact_at": iso(state.last_contact_at) if state else None,
        "last_error": error,
        "halted": state.halted_code if state else None,
        "consecutive_failures": state.consecutive_failures if state else 0,
        "next_attempt_at": iso(state.next_attempt_at) if state else None,
        "clock_skew_s": state.clock_skew_s if state else None,
        "quarantined": quarantine,
        "feeds": cursors,
    }
