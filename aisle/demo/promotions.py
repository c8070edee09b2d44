"""The demo's promotions: one of every kind, imported at the cloud with the real command line,
pulled by both stores, and then a cart for each kind at a kiosk, checked against the amount the
offer's rule gives (worked out here from the shelf prices, not by the store's engine) and
against its allocation to the cart's lines."""

from __future__ import annotations

import csv
import json
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from aisle.demo.catalog import DemoCatalog
from aisle.demo.chain import DemoStore, pay_cash
from devices.client import AisleClient
from shared.money import format_amount

MEMBER_PHONE = "13900139017"


@dataclass(frozen=True)
class _Product:
    sku: str
    barcode: str
    price: int


@dataclass(frozen=True)
class Tour:
    """One cart for one kind: what it scans and what the offer must take off."""

    kind: str
    promotion: dict[str, Any]
    scans: list[tuple[_Product, int]]
    expected: int
    member: bool = False


def _half_up(numerator: int, denominator: int) -> int:
    return (2 * numerator + denominator) // (2 * denominator)


def _products(catalog: DemoCatalog, count: int) -> list[_Product]:
    """``count`` products a shopper scans without an ID check, the same for a seed every time."""
    scannable = set(catalog.barcodes) - set(catalog.age_restricted_barcodes)
    with catalog.path.open(newline="", encoding="utf-8") as f:
        rows = [
            r
            for r in csv.DictReader(f)
            if r["sold_by"] == "each" and r["barcodes"].split("|")[0] in scannable
        ]
    rows.sort(key=lambda r: r["sku"])
    step = len(rows) // count
    return [
        _Product(r["sku"], r["barcodes"].split("|")[0], int(r["unit_price"]))
        for r in rows[::step][:count]
    ]


def tours(catalog: DemoCatalog) -> list[Tour]:
    """A promotion of every kind on products of its own, and the cart that shows it."""
    a, b, c, d, e, f, g, h = _products(catalog, 8)
    bundle_price = _half_up((2 * e.price + f.price) * 8, 10)  # the three for 80 %
    return [
        Tour(
            "percent_off",
            {"name": f"{a.sku} 20% off", "percent_bp": 2000, "target": {"skus": [a.sku]}},
            [(a, 2)],
            _half_up(2 * a.price * 2000, 10_000),
        ),
        Tour(
            "amount_off",
            {"name": f"{b.sku} 1.00 off each", "amount": 100, "target": {"skus": [b.sku]}},
            [(b, 3)],
            3 * min(100, b.price),
        ),
        Tour(
            "member_price",
            {
                "name": f"{c.sku} member price",
                "price": c.price * 9 // 10,
                "members_only": True,
                "target": {"skus": [c.sku]},
            },
            [(c, 2)],
            2 * (c.price - c.price * 9 // 10),
            member=True,
        ),
        Tour(
            "buy_x_get_y",
            {
                "name": f"{d.sku} buy 2 get 1 free",
                "buy": 2,
                "get": 1,
                "percent_bp": 10_000,
                "target": {"skus": [d.sku]},
            },
            [(d, 3)],
            d.price,
        ),
        Tour(
            "bundle",
            {
                "name": f"any 3 of {e.sku}, {f.sku}",
                "size": 3,
                "price": bundle_price,
                "target": {"skus": [e.sku, f.sku]},
            },
            [(e, 2), (f, 1)],
            2 * e.price + f.price - bundle_price,
        ),
        Tour(
            "threshold",
            {
                "name": f"spend {2 * g.price / 100:.2f} on {g.sku}, save half a piece",
                "stage": "basket",
                "steps": [{"min": 2 * g.price, "off": g.price // 2}],
                "target": {"skus": [g.sku]},
            },
            [(g, 2)],
            g.price // 2,
        ),
        Tour(
            "every",
            {
                "name": f"every {h.sku} piece's worth, 10% of one off",
                "stage": "basket",
                "every": h.price,
                "amount": h.price // 10,
                "target": {"skus": [h.sku]},
            },
            [(h, 3)],
            3 * (h.price // 10),
        ),
    ]


def write_promotions(path: Path, chosen: list[Tour]) -> Path:
    """The demo's promotions as HQ's import file."""
    docs = [
        {"id": f"demo-{t.kind.replace('_', '-')}", "kind": t.kind, **t.promotion} for t in chosen
    ]
    path.write_text(json.dumps({"promotions": docs}, ensure_ascii=False, indent=2))
    return path


def _scan(kiosk: AisleClient, tour: Tour, member_code: str | None) -> dict[str, Any]:
    cart = kiosk.create_cart("kiosk")
    for product, times in tour.scans:
        for _ in range(times):
            cart = kiosk.add_line(cart["id"], product.barcode)
    if tour.member and member_code is not None:
        cart = kiosk.attach_member(cart["id"], member_code)
    return cart


def _allocation_problems(cart: dict[str, Any]) -> list[str]:
    problems = []
    shares: dict[str, int] = {}
    for offer in cart["discounts"]:
        if sum(s["amount"] for s in offer["lines"]) != offer["amount"]:
            problems.append(f"{offer['name']}: its lines' shares do not add up to it")
        for share in offer["lines"]:
            shares[share["line_id"]] = shares.get(share["line_id"], 0) + share["amount"]
    if shares != {line["id"]: line["discount"] for line in cart["lines"] if line["discount"]}:
        problems.append("the lines' discounts are not the sums of their offers' shares")
    totals = cart["totals"]
    if totals["total"] != totals["subtotal"] - totals["discount"]:
        problems.append("the total is not the subtotal less the discount")
    return problems


def promotion_tour(
    store: DemoStore, chosen: list[Tour], say: Callable[[str], None] = print
) -> tuple[list[int], list[str]]:
    """A cart for each kind at ``store``'s first kiosk, each paid in cash: the sales' totals
    and the problems found."""
    problems: list[str] = []
    totals: list[int] = []
    with AisleClient(store.base_url, store.tokens["kiosk"][0], timeout=10) as kiosk:
        member_code = str(kiosk.sign_up_member(MEMBER_PHONE)["code"])
        for tour in chosen:
            cart = _scan(kiosk, tour, member_code)
            offers, currency = cart["discounts"], str(cart["currency"])
            took = sum(o["amount"] for o in offers)
            lines = sorted({s["line_id"] for o in offers for s in o["lines"]})
            mark = "ok" if took == tour.expected else f"EXPECTED {tour.expected}"
            say(
                f"  {tour.kind:<13} {', '.join(o['name'] for o in offers) or '(none)'}: "
                f"-{format_amount(took, currency)} over {len(lines)} line(s) of "
                f"{len(cart['lines'])}, total {format_amount(cart['totals']['total'], currency)} "
                f"({mark})"
            )
            if took != tour.expected:
                problems.append(f"{tour.kind}: took {took}, the rule gives {tour.expected}")
            problems += [f"{tour.kind}: {p}" for p in _allocation_problems(cart)]
            sale = pay_cash(kiosk, cart)
            totals.append(int(sale["sale"]["total"]))
            kept = sum(d["amount"] for d in sale["sale"]["discounts"])
            if kept != took:
                problems.append(f"{tour.kind}: the sale kept {kept} of the cart's {took}")
    return totals, problems
