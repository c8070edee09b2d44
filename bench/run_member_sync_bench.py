"""A chain of stores' member events into the cloud on PostgreSQL, against plain sales.

``make bench-member-sync``. What it does (real processes and sockets):

1. A cloud (``aisle cloud serve``, 2 workers) on a database of its own on the PostgreSQL server
   (``--pg-url``; the server itself is left alone), the demo catalog imported, ``--stores``
   stores added and enrolled, each with a key of its own.
2. Two pushes from every store, each as signed gzip batches of ``--batch`` events, built up
   front, posted by ``--clients`` threads at once (each thread takes its stores' batches in
   turn, so all stores push side by side as a chain's do after a busy hour):

   * ``plain``: ``--sales`` sales a store, no member: the sync rate measured so far;
   * ``members``: ``--members`` sign-ups a store (phones sealed to the cloud's key, as a store
     offline writes them), then ``--sales`` sales a store, each for one of its members, each
     earning points, one in ``--burn-every`` also spending some offline (a burn, no hold).

3. Counts every answer's ``applied`` and ``quarantined`` (a quarantined event fails the run: the
   figures would then measure the quarantine path), and at the end checks the cloud's ledger:
   the sum of every entry equals the points earned less the points spent in what was sent.

Reports events/s for each push and their ratio. Writes JSON to ``bench/results/``.
"""

from __future__ import annotations

import argparse
import csv
import json
import os
import random
import sys
import tempfile
import threading
import time
import uuid
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

BENCH = Path(__file__).resolve().parent
sys.path.insert(0, str(BENCH.parent))
sys.path.insert(0, str(BENCH))

from processes import Server, free_port, machine  # noqa: E402
from run_ingest_scale_bench import DEFAULT_PG, own_database  # noqa: E402
from run_sync_bench import aisle, serve_cmd  # noqa: E402


def log(msg: str) -> None:
    print(f"[member-sync-bench {datetime.now(UTC):%H:%M:%S}] {msg}", flush=True)


class StorePusher:
    """One store as the cloud sees it: its key, its next seq and its batches to send."""

    def __init__(self, store_id: str, code: str) -> None:
        from sync.keys import generate_private_key

        self.store_id, self.code = store_id, code
        self.key = generate_private_key()
        self.seq = 0
        self.cloud_key = ""
        self.batches: list[bytes] = []
        self.pending = 0  # events in ``batches``

    def enroll(self, http: Any, url: str) -> None:
        from sync.keys import public_key_b64
        from sync.protocol import canonical_json
        from sync.signing import sign_request

        body = canonical_json({"code": self.code, "store_public_key": public_key_b64(self.key)})
        headers = sign_request(
            self.key, method="POST", target="/api/v1/enroll", store_id=self.store_id,
            body=body, now=datetime.now(UTC),
        )  # fmt: skip
        r = http.post(
            url + "/api/v1/enroll",
            data=body,
            headers={**headers, "Content-Type": "application/json"},
            timeout=30,
        )
        r.raise_for_status()
        self.cloud_key = r.json()["cloud_public_key"]

    def add(self, events: list[dict[str, Any]], batch: int) -> None:
        from sync.protocol import encode_batch

        for start in range(0, len(events), batch):
            chunk = []
            for e in events[start : start + batch]:
                self.seq += 1
                chunk.append({**e, "seq": self.seq})
            self.pending += len(chunk)
            self.batches.append(encode_batch(self.store_id, chunk, batch_id=str(uuid.uuid4())))

    def post(self, http: Any, url: str, body: bytes) -> dict[str, Any]:
        from sync.protocol import BATCH_CONTENT_TYPE
        from sync.signing import sign_request

        headers = sign_request(
            self.key, method="POST", target="/api/v1/sync/push", store_id=self.store_id,
            body=body, now=datetime.now(UTC),
        )  # fmt: skip
        r = http.post(
            url + "/api/v1/sync/push",
            data=body,
            headers={**headers, "Content-Type": BATCH_CONTENT_TYPE, "Content-Encoding": "gzip"},
            timeout=300,
        )
        r.raise_for_status()
        answer: dict[str, Any] = r.json()
        return answer


def _products(catalog_csv: Path) -> list[dict[str, Any]]:
    with catalog_csv.open(encoding="utf-8") as f:
        rows = [
            r for r in csv.DictReader(f) if r["sold_by"] == "each" and r["age_restricted"] != "true"
        ]
    return [
        {"sku": r["sku"], "name": r["name"], "barcode": r["barcodes"].split("|")[0],
         "price": int(r["unit_price"]), "tax_bp": int(r["tax_rate"]) * 100}
        for r in rows
    ]  # fmt: skip


def _sale(store_id: str, n: int, at: datetime, products: list[dict[str, Any]], rng: random.Random,
          member: dict[str, Any] | None) -> dict[str, Any]:  # fmt: skip
    """A ``sale.completed`` event of 5 lines, paid in cash (and points, when ``member`` burns)."""
    from shared.ids import new_id
    from sync.contract import SaleCompleted

    lines, total = [], 0
    for p in rng.sample(products, 5):
        q = rng.choice((1, 1, 2))
        line_total = p["price"] * q
        tax = line_total * p["tax_bp"] // (10_000 + p["tax_bp"])
        total += line_total
        lines.append(
            {"id": new_id(), "sku": p["sku"], "name": p["name"], "barcode": p["barcode"],
             "quantity": q, "unit_price": p["price"], "price": p["price"],
             "subtotal": line_total, "discount": 0, "tax": tax, "total": line_total,
             "tax_rate_bp": p["tax_bp"]}
        )  # fmt: skip
    burned = 0 if member is None else member.pop("burn", 0)
    payments = [{"method": "cash", "amount": total - burned, "reference": None}]
    if burned:
        payments.append({"method": "points", "amount": burned, "reference": None})
    sale = {
        "id": new_id(), "number": f"{store_id}-{n:06d}", "cart_id": new_id(),
        "channel": "kiosk", "currency": "CNY", "subtotal": total, "discount": 0,
        "tax": sum(line["tax"] for line in lines), "total": total, "paid": total, "change": 0,
        "item_count": sum(line["quantity"] for line in lines), "created_at": at.isoformat(),
        "lines": lines, "payments": payments,
    }  # fmt: skip
    if member is not None:
        earned = (total - burned) // 100
        sale["member"] = {
            "id": member["id"], "earned": earned, "burned": burned, "spend": total - burned,
            "offline": bool(burned),
        }  # fmt: skip
        member["balance"] += earned - burned
    doc = SaleCompleted.model_validate({"store_id": store_id, "sale": sale}).to_dict()
    return {"id": new_id(), "type": "sale.completed", "aggregate_id": sale["id"],
            "payload": doc, "created_at": at.isoformat()}  # fmt: skip


def _sign_up(store: StorePusher, i: int, at: datetime) -> tuple[dict[str, Any], dict[str, Any]]:
    from shared.ids import new_id
    from shared.member_codes import new_member_code
    from shared.pii import seal_for
    from sync.contract import MemberSignedUp, SealedMember

    member_id = new_id()
    number = int(store.store_id[1:]) * 100_000 + i
    sealed = SealedMember(member_id=member_id, phone=f"+86137{number:08d}", name=None)
    doc = MemberSignedUp(
        store_id=store.store_id, member_id=member_id, code=new_member_code(),
        sealed=seal_for(store.cloud_key, sealed.model_dump_json()), device_id="bench-kiosk",
        recruited_by=None, at=at.isoformat(),
    ).to_dict()  # fmt: skip
    event = {"id": new_id(), "type": "member.signed_up", "aggregate_id": member_id,
             "payload": doc, "created_at": at.isoformat()}  # fmt: skip
    return event, {"id": member_id, "balance": 0}


def push_all(stores: list[StorePusher], url: str, clients: int) -> dict[str, Any]:
    """Every store's batches, ``clients`` threads at once; events/s."""
    import requests

    counts = {"applied": 0, "quarantined": 0, "batches": 0}
    lock = threading.Lock()
    errors: list[str] = []

    def work(mine: list[StorePusher]) -> None:
        http = requests.Session()
        # Round robin over the thread's stores: batch 1 of each, then batch 2 of each, ...
        for turn in range(max(len(s.batches) for s in mine)):
            for store in mine:
                if turn >= len(store.batches):
                    continue
                try:
                    answer = store.post(http, url, store.batches[turn])
                except Exception as exc:  # every failure is counted and reported
                    errors.append(f"{store.store_id}: {exc!r}"[:300])
                    return
                with lock:
                    counts["applied"] += answer["applied"]
                    counts["quarantined"] += len(answer["quarantined"])
                    counts["batches"] += 1

    events = sum(s.pending for s in stores)
    t0 = time.perf_counter()
    threads = [threading.Thread(target=work, args=(stores[i::clients],)) for i in range(clients)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    seconds = time.perf_counter() - t0
    for s in stores:
        s.batches, s.pending = [], 0
    return {
        **counts,
        "errors": errors[:3],
        "seconds": round(seconds, 2),
        "events": events,
        "events_per_s": round(events / seconds, 1),
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--stores", type=int, default=200)
    parser.add_argument("--members", type=int, default=25, help="sign-ups a store")
    parser.add_argument("--sales", type=int, default=250, help="sales a store, in each push")
    parser.add_argument("--batch", type=int, default=500)
    parser.add_argument(
        "--burn-every", type=int, default=10, help="one member sale in this many spends points"
    )
    parser.add_argument("--clients", type=int, default=8)
    parser.add_argument("--pg-url", default=os.environ.get("AISLE_TEST_POSTGRES_URL", DEFAULT_PG))
    args = parser.parse_args(argv)
    import requests
    from sqlalchemy import func, select

    from aisle.demo.catalog import write_demo_catalog
    from cloud.db import Database
    from cloud.members.models import PointsEntry
    from cloud.stores.service import StoreInput, add_store

    result: dict[str, Any] = {
        "date": datetime.now(UTC).isoformat(timespec="seconds"),
        "machine": machine(),
        "stores": args.stores,
        "members_a_store": args.members,
        "sales_a_store": args.sales,
        "batch": args.batch,
        "burn_every": args.burn_every,
        "clients": args.clients,
    }
    rng = random.Random(11)
    with own_database(args.pg_url) as db_url, tempfile.TemporaryDirectory() as tmp_name:
        tmp = Path(tmp_name)
        cenv = {"AISLE_DATABASE_URL": db_url}
        catalog = write_demo_catalog(tmp / "catalog.csv", count=2400, seed=7)
        products = _products(catalog.path)
        aisle("cloud", "init", str(tmp / "cloud"), env=cenv)
        ccfg = str(tmp / "cloud" / "cloud.toml")
        aisle("cloud", "import-catalog", str(catalog.path), "--config", ccfg, env=cenv)
        db = Database.open(db_url)
        now = datetime.now(UTC)
        stores = [
            StorePusher(sid, add_store(db, StoreInput(sid), now=now, code_ttl_s=3600))
            for sid in (f"S{i:03d}" for i in range(1, args.stores + 1))
        ]
        port = free_port()
        url = f"http://127.0.0.1:{port}"
        cmd = [*serve_cmd("cloud", ccfg), "--port", str(port)]
        with Server("cloud", cmd, {**os.environ, **cenv}, port), requests.Session() as http:
            for s in stores:
                s.enroll(http, url)
            log(f"{len(stores)} stores enrolled")
            start = now - timedelta(hours=2)
            for s in stores:
                s.add(
                    [_sale(s.store_id, n, start + timedelta(seconds=n), products, rng, None)
                     for n in range(args.sales)],
                    args.batch,
                )  # fmt: skip
            plain = push_all(stores, url, args.clients)
            log(f"plain sales: {plain}")
            earned_less_spent = 0
            for s in stores:
                events, members = [], []
                for i in range(args.members):
                    event, member = _sign_up(s, i, start + timedelta(seconds=i))
                    events.append(event)
                    members.append(member)
                for n in range(args.sales):
                    member = rng.choice(members)
                    if n % args.burn_every == args.burn_every - 1 and member["balance"] > 0:
                        member["burn"] = min(member["balance"], 50)
                    at = start + timedelta(minutes=30, seconds=n)
                    events.append(_sale(s.store_id, args.sales + n, at, products, rng, member))
                earned_less_spent += sum(m["balance"] for m in members)
                s.add(events, args.batch)
            with_members = push_all(stores, url, args.clients)
            log(f"member events: {with_members}")
        with db.read() as session:
            ledger = int(
                session.execute(select(func.coalesce(func.sum(PointsEntry.points), 0))).scalar_one()
            )
        db.dispose()
    result["plain"] = plain
    result["members"] = with_members
    result["ledger_sum"] = ledger
    result["earned_less_spent_sent"] = earned_less_spent
    result["ratio"] = round(with_members["events_per_s"] / plain["events_per_s"], 2)
    log(
        f"plain {plain['events_per_s']} events/s, members {with_members['events_per_s']} "
        f"events/s (x{result['ratio']}); ledger {ledger} = sent {earned_less_spent}: "
        f"{ledger == earned_less_spent}"
    )
    out_dir = BENCH / "results"
    out_dir.mkdir(exist_ok=True)
    path = out_dir / f"member-sync-{datetime.now(UTC):%Y%m%dT%H%M%S}.json"
    path.write_text(json.dumps(result, indent=1))
    log(f"results in {path}")
    failed = (
        plain["quarantined"]
        or with_members["quarantined"]
        or plain["errors"]
        or with_members["errors"]
    )
    return 1 if failed or ledger != earned_less_spent else 0


if __name__ == "__main__":
    raise SystemExit(main())
