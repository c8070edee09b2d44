"""Repricing a cart under many promotions: the engine alone, in process (``make bench-pricing``).

Builds a 2,400-product catalog in 24 categories, ``--promotions`` live promotions of every
kind (single-SKU offers, category offers, buy X get Y, bundles, thresholds, every-X-off-Y,
member and tier offers, hot products with a limit, time windows), and carts of ``--lines``
lines. Two mixes:

* ``catalog``: the promotions target SKUs and categories of the whole catalog at random, as a
  store's week of offers would; a cart meets the ones its lines happen to hit;
* ``all-hit``: every promotion targets something in the cart (the worst case: every offer is
  evaluated and most apply).

Each repricing is timed alone (``time.perf_counter``), the cart and the member change between
runs, and p50 / p99 / max are printed in ms with the offers that applied. Usage:
``python bench/run_pricing_bench.py [--lines 100] [--promotions 200] [--runs 2000]``.
"""

from __future__ import annotations

import argparse
import json
import platform
import random
import sys
import time
from datetime import date, datetime
from pathlib import Path
from statistics import median
from zoneinfo import ZoneInfo

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
sys.path.insert(0, str(Path(__file__).resolve().parent))

from promotion_mix import promotion_docs

from edge.pricing.promotion_engine import Item, Occasion, PromotionBook, reprice
from shared.promotions import Promotion
from sync.contract import PromotionItem

SHANGHAI = ZoneInfo("Asia/Shanghai")
SKUS = [f"SKU{n:04d}" for n in range(2_400)]
CATEGORIES = [f"cat{n:02d}" for n in range(24)]
CATEGORY_OF = {sku: CATEGORIES[n % len(CATEGORIES)] for n, sku in enumerate(SKUS)}
PRICE_OF = {sku: 150 + (n * 7919) % 19_850 for n, sku in enumerate(SKUS)}


def _promotions(rnd: random.Random, count: int, pool: list[str]) -> list[Promotion]:
    """``count`` promotions of every kind (``promotion_mix``), as the store's engine reads them."""
    docs = promotion_docs(
        rnd, count, pool, category_of=CATEGORY_OF, price_of=PRICE_OF, today=date(2026, 11, 28)
    )
    return [PromotionItem.model_validate(doc).to_promotion() for doc in docs]


def _cart(rnd: random.Random, lines: int, skus: list[str] | None = None) -> list[Item]:
    skus = rnd.sample(SKUS, lines) if skus is None else skus
    return [
        Item(
            line_id=f"L{n:03d}-{rnd.getrandbits(32):08x}",
            sku=sku,
            category=CATEGORY_OF[sku],
            piece_price=PRICE_OF[sku],
            quantity=rnd.choice([1, 1, 1, 2, 3, 6]),
        )
        for n, sku in enumerate(skus)
    ]


def _run(mix: str, lines: int, count: int, runs: int, seed: int) -> dict[str, object]:
    rnd = random.Random(seed)
    if mix == "catalog":
        carts, pool = [_cart(rnd, lines) for _ in range(20)], SKUS
    else:  # the same products in every cart, other quantities: every offer meets them
        pool = rnd.sample(SKUS, lines)
        carts = [_cart(rnd, lines, pool) for _ in range(20)]
    started = time.perf_counter()
    book = PromotionBook(_promotions(rnd, count, pool))
    built_ms = (time.perf_counter() - started) * 1e3
    occasions = [
        Occasion(store_id="S001", local=datetime(2026, 11, 28, 18, 30, tzinfo=SHANGHAI)),
        Occasion(
            store_id="S001",
            local=datetime(2026, 11, 28, 18, 30, tzinfo=SHANGHAI),
            member_id="m1",
            tier="gold",
            taken={"P0013": 1},
        ),
    ]
    samples, applied = [], []
    for n in range(runs):
        cart, occasion = carts[n % len(carts)], occasions[n % 2]
        started = time.perf_counter()
        pricing = reprice(cart, book, occasion)
        samples.append(time.perf_counter() - started)
        applied.append(len(pricing.applied))
    samples.sort()
    return {
        "mix": mix,
        "lines": lines,
        "promotions": count,
        "runs": runs,
        "book_built_ms": round(built_ms, 2),
        "p50_ms": round(median(samples) * 1e3, 3),
        "p99_ms": round(samples[int(len(samples) * 0.99)] * 1e3, 3),
        "max_ms": round(samples[-1] * 1e3, 3),
        "offers_applied_median": median(applied),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--lines", type=int, default=100)
    parser.add_argument("--promotions", type=int, default=200)
    parser.add_argument("--runs", type=int, default=2_000)
    parser.add_argument("--seed", type=int, default=7)
    args = parser.parse_args()
    print(json.dumps({"python": platform.python_version(), "machine": platform.machine()}))
    for mix in ("catalog", "all-hit"):
        print(json.dumps(_run(mix, args.lines, args.promotions, args.runs, args.seed)))


if __name__ == "__main__":
    main()
