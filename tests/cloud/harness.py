"""Test harness for the cloud: the app on a test client, stores that sign like an edge, events.

``StoreClient`` is what the edge's sync client will do, built only on ``sync/``: it signs each
request with the store's key and checks the cloud's answer signature against the pinned key.
"""

from __future__ import annotations

import gzip
import json
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from flask import Flask
from flask.testing import FlaskClient
from werkzeug.test import TestResponse

from cloud.app import create_app
from cloud.catalog.service import import_catalog
from cloud.context import CloudContext
from cloud.settings import load_settings
from cloud.stores.service import StoreInput, add_store, issue_token
from shared.catalog_csv import CATALOG_COLUMNS
from shared.clock import FixedClock
from shared.ids import new_id
from shared.member_codes import new_member_code
from shared.pii import seal_for
from sync import contract
from sync.keys import generate_private_key, load_public_key_b64, public_key_b64
from sync.protocol import PROTOCOL_VERSION, WireEvent, canonical_json, encode_batch, request_target
from sync.signing import new_nonce, sign_request, verify_response
from tests.builders import ean13

T0 = datetime(2026, 11, 25, 9, 30, tzinfo=UTC)

CATALOG_HEADER = ",".join(CATALOG_COLUMNS)


def catalog_csv(count: int = 5, *, price: int = 1000) -> str:
    rows = [CATALOG_HEADER]
    for i in range(1, count + 1):
        rows.append(
            f"SKU{i:04d},Product {i},{ean13(f'69000000{i:04d}')},{price + i},9,grocery,each,false,"
        )
    return "\n".join(rows) + "\n"


# --- events -------------------------------------------------------------------------------------


def outbox_event(seq: int, event: contract.Event, *, at: datetime = T0) -> dict[str, Any]:
    """An event as a store's outbox sends it: built from its schema in ``sync.contract``."""
    return {
        "seq": seq,
        "id": new_id(),
        "type": event.TYPE,
        "aggregate_id": event.aggregate_id,
        "payload": event.to_dict(),
        "created_at": at.isoformat(),
    }


def sale_event(
    seq: int,
    store_id: str,
    *,
    lines: int = 2,
    at: datetime = T0,
    member: contract.SaleMember | None = None,
) -> dict[str, Any]:
    """A ``sale.completed`` outbox event of ``lines`` lines, for ``member`` if given."""
    sale_lines = [
        contract.SaleLine(
            id=new_id(),
            sku=f"SKU{i:04d}",
            name=f"Product {i}",
            barcode=ean13(f"69000000{i:04d}"),
            quantity=1,
            unit_price=1000 + i,
            price=1000 + i,
            subtotal=1000 + i,
            discount=0,
            tax=83,
            total=1000 + i,
            tax_rate_bp=900,
        )
        for i in range(1, lines + 1)
    ]
    total = sum(line.total for line in sale_lines)
    sale = contract.SaleDoc(
        id=new_id(),
        number=f"{store_id}-{seq:06d}",
        cart_id=new_id(),
        channel="kiosk",
        currency="CNY",
        subtotal=total,
        discount=0,
        tax=83 * lines,
        total=total,
        paid=total,
        change=0,
        item_count=lines,
        device_id=new_id(),
        created_at=at.isoformat(),
        lines=sale_lines,
        payments=[contract.SalePayment(method="card", amount=total, reference="auth-1")],
        member=member,
    )
    return outbox_event(seq, contract.SaleCompleted(store_id=store_id, sale=sale), at=at)


def stock_event(seq: int, *, sku: str = "SKU0001", quantity: int = 12) -> dict[str, Any]:
    moved = contract.StockMoved(
        movement_id=new_id(),
        sku=sku,
        quantity=quantity,
        kind="receive",
        reason="delivery",
        on_hand_after=quantity,
        at=T0.isoformat(),
    )
    return outbox_event(seq, moved)


def return_event(
    seq: int, store_id: str, sale: dict[str, Any], *, points_back: int = 0, at: datetime = T0
) -> dict[str, Any]:
    """A ``return.created`` of the first line of ``sale``, giving ``points_back`` back."""
    line = sale["payload"]["sale"]["lines"][0]
    created = contract.ReturnCreated(
        store_id=store_id,
        return_id=new_id(),
        sale_id=sale["aggregate_id"],
        sale_number=sale["payload"]["sale"]["number"],
        reason="damaged",
        refund_total=line["total"],
        currency="CNY",
        lines=[
            contract.ReturnLine(
                sale_line_id=line["id"],
                sku=line["sku"],
                quantity=1,
                amount=line["total"],
                stock_units=1,
                movement_id=new_id(),
            )
        ],
        refunds=[contract.Refund(method="card", amount=line["total"])],
        points_back=points_back,
        at=at.isoformat(),
    )
    return outbox_event(seq, created, at=at)


def signup_event(
    seq: int,
    store_id: str,
    phone: str,
    *,
    to: str,
    member_id: str | None = None,
    name: str | None = None,
    at: datetime = T0,
    device_id: str | None = None,
    recruited_by: str | None = None,
) -> dict[str, Any]:
    """A ``member.signed_up`` as a store writes it for a member it signed up offline, the phone
    sealed to the cloud key ``to``, on ``device_id`` (a new one by default) by the staff member
    ``recruited_by``."""
    member_id = member_id or new_id()
    sealed = contract.SealedMember(member_id=member_id, phone=phone, name=name)
    signed = contract.MemberSignedUp(
        store_id=store_id,
        member_id=member_id,
        code=new_member_code(),
        sealed=seal_for(to, sealed.model_dump_json()),
        device_id=device_id or new_id(),
        recruited_by=recruited_by,
        at=at.isoformat(),
    )
    return outbox_event(seq, signed, at=at)


def exit_event(seq: int, store_id: str, sale_id: str) -> dict[str, Any]:
    used = contract.ExitPassUsed(store_id=store_id, sale_id=sale_id, audit=False, at=T0.isoformat())
    return outbox_event(seq, used)


def sales(store_id: str, seqs: Iterable[int]) -> list[dict[str, Any]]:
    return [sale_event(seq, store_id) for seq in seqs]


# --- the cloud and its stores -------------------------------------------------------------------


@dataclass
class Cloud:
    app: Flask
    client: FlaskClient
    clock: FixedClock
    data_dir: Path
    hq_token: str = ""

    @property
    def ctx(self) -> CloudContext:
        context: CloudContext = self.app.extensions["aisle_cloud"]
        return context

    def close(self) -> None:
        self.ctx.db.dispose()

    def add_store(self, store_id: str = "S001", **kw: Any) -> str:
        """The store's one-time enrollment code."""
        return add_store(
            self.ctx.db,
            StoreInput(store_id, **kw),
            now=self.clock.now(),
            code_ttl_s=self.ctx.settings.enrollment.code_ttl_s,
        )

    def store(self, store_id: str = "S001", **kw: Any) -> StoreClient:
        """A store added and enrolled, ready to push and pull."""
        code = self.add_store(store_id, **kw)
        client = StoreClient(self, store_id)
        response = client.enroll(code)
        assert response.status_code == 200, response.get_json()
        return client

    def import_catalog(self, text: str) -> None:
        path = self.data_dir / f"catalog-{new_id()}.csv"
        path.write_text(text, encoding="utf-8")
        import_catalog(self.ctx.db, path, now=self.clock.now())

    def hq(
        self,
        path: str,
        *,
        method: str = "GET",
        headers: dict[str, str] | None = None,
        **kw: Any,
    ) -> TestResponse:
        """``method path`` with an HQ token (and ``headers``)."""
        if not self.hq_token:
            self.hq_token = issue_token(self.ctx.db, role="hq", name="tests", now=self.clock.now())
        sent = {"Authorization": f"Bearer {self.hq_token}", **(headers or {})}
        return self.client.open(path, method=method, headers=sent, **kw)

    def channel_token(self, name: str = "shop") -> str:
        """A new token of the channel ``name`` (an online shop, a mini-program)."""
        return issue_token(self.ctx.db, role="channel", name=name, now=self.clock.now())

    def channel(
        self,
        token: str,
        path: str,
        *,
        method: str = "GET",
        key: str | None = None,
        **kw: Any,
    ) -> TestResponse:
        """``method /api/v1/channel/path`` with a channel's ``token`` and, for a write, its
        Idempotency-Key ``key``."""
        headers = {"Authorization": f"Bearer {token}"}
        if key is not None:
            headers["Idempotency-Key"] = key
        return self.client.open(f"/api/v1/channel{path}", method=method, headers=headers, **kw)


def make_cloud(
    data_dir: Path,
    database_url: str,
    *,
    settings: dict[str, Any] | None = None,
    **overrides: Any,
) -> Cloud:
    """A cloud app on ``database_url``; ``settings``: dotted settings over the defaults."""
    data_dir.mkdir(parents=True, exist_ok=True)
    loaded = load_settings(
        None,
        environ={},
        overrides={"data_dir": str(data_dir), "database_url": database_url, **(settings or {})},
    )
    clock = FixedClock(T0)
    app = create_app(loaded, clock=clock, **overrides)
    return Cloud(app, app.test_client(), clock, data_dir)


@dataclass
class StoreClient:
    """A store as the cloud sees it: its key, and signed push and pull like the edge's client."""

    cloud: Cloud
    store_id: str
    key: Ed25519PrivateKey = field(default_factory=generate_private_key)
    protocol: int = PROTOCOL_VERSION
    cloud_public_key: str = ""
    last_nonce: str = ""

    def enroll(self, code: str, *, key: Ed25519PrivateKey | None = None) -> TestResponse:
        body = canonical_json(
            {"code": code, "store_public_key": public_key_b64(self.key), "store_id": self.store_id}
        )
        target = "/api/v1/enroll"
        headers = sign_request(
            key or self.key,
            method="POST",
            target=target,
            store_id=self.store_id,
            body=body,
            now=self.cloud.clock.now(),
            protocol=self.protocol,
        )
        response = self.cloud.client.post(
            target, data=body, headers={**headers, "Content-Type": "application/json"}
        )
        if response.status_code == 200:
            self.cloud_public_key = response.get_json()["cloud_public_key"]
        return response

    def signed(
        self,
        method: str,
        target: str,
        body: bytes = b"",
        *,
        key: Ed25519PrivateKey | None = None,
        store_id: str | None = None,
        at: datetime | None = None,
        nonce: str | None = None,
        headers: dict[str, str] | None = None,
    ) -> TestResponse:
        self.last_nonce = nonce or new_nonce()
        signed = sign_request(
            key or self.key,
            method=method,
            target=target,
            store_id=store_id or self.store_id,
            body=body,
            now=at or self.cloud.clock.now(),
            protocol=self.protocol,
            nonce=self.last_nonce,
        )
        signed.update(headers or {})
        return self.cloud.client.open(
            target,
            method=method,
            data=body,
            headers={
                **signed,
                "Content-Type": "application/vnd.aisle.batch+json",
                "Content-Encoding": "gzip",
            },
        )

    def call(self, method: str, target: str, doc: Any = None) -> TestResponse:
        """A signed JSON call, as the store's online calls (members, coupons) make them."""
        body = b"" if doc is None else canonical_json(doc)
        signed = sign_request(
            self.key,
            method=method,
            target=target,
            store_id=self.store_id,
            body=body,
            now=self.cloud.clock.now(),
            protocol=self.protocol,
            nonce=new_nonce(),
        )
        headers = {**signed, "Content-Type": "application/json"} if body else signed
        return self.cloud.client.open(target, method=method, data=body, headers=headers)

    def batch(self, events: list[dict[str, Any]], *, store_id: str | None = None) -> bytes:
        return encode_batch(
            store_id or self.store_id,
            [WireEvent(**e) for e in events],
            batch_id=new_id(),
        )

    def push(self, events: list[dict[str, Any]], **kw: Any) -> TestResponse:
        return self.signed("POST", "/api/v1/sync/push", self.batch(events), **kw)

    def pull(
        self, feed: str, cursor: str | None = None, limit: int | None = None, **kw: Any
    ) -> TestResponse:
        target = request_target(
            "/api/v1/sync/pull", {"feed": feed, "cursor": cursor, "limit": limit}
        )
        response = self.signed("GET", target, **kw)
        self.verify(response)
        return response

    def verify(self, response: TestResponse) -> None:
        """Check the answer's signature against the pinned cloud key, as the edge must."""
        verify_response(
            load_public_key_b64(self.cloud_public_key),
            request_nonce=self.last_nonce,
            status=response.status_code,
            body=response.get_data(),
            headers=dict(response.headers.items()),
        )

    def pull_all(
        self, feed: str, cursor: str | None = None, limit: int = 100
    ) -> tuple[dict[str, Any], str, list[bool]]:
        """Follow pages to the end: (key -> data, final cursor, snapshot flag per page)."""
        seen: dict[str, Any] = {}
        flags = []
        while True:
            response = self.pull(feed, cursor, limit)
            assert response.status_code == 200, response.get_json()
            page = response.get_json()
            for change in page["changes"]:
                seen[change["key"]] = change["data"]
            flags.append(page["snapshot"])
            cursor = page["next_cursor"]
            if not page["has_more"]:
                return seen, cursor, flags


def gz(value: Any) -> bytes:
    return gzip.compress(json.dumps(value).encode())


def later(clock: FixedClock, **delta: float) -> datetime:
    return clock.now() + timedelta(**delta)
