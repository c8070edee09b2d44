"""A week of promotions for benchmarks: ``count`` promotions of every kind over a catalog, as
HQ writes them (:class:`sync.contract.PromotionItem` documents).

Of every 20: 8 percent-off and 3 amount-off single-SKU offers (one group per SKU, so they
compete), 2 member prices, 1 hot product with a per-member limit, 1 buy-2-get-1, 1 bundle of
any 3, 1 evening tier offer on a category, and 3 basket offers (a two-step threshold on a
category, every 100 off 10, 5 % off a category from 200) in one basket group. Every one runs
the week around ``today``.
"""

from __future__ import annotations

import random
from collections.abc import Mapping, Sequence
from datetime import date, timedelta
from typing import Any


def promotion_docs(
    rnd: random.Random,
    count: int,
    pool: Sequence[str],
    *,
    category_of: Mapping[str, str],
    price_of: Mapping[str, int],
    today: date,
) -> list[dict[str, Any]]:
    """``count`` promotion documents targeting SKUs of ``pool`` and their categories."""
    week = {
        "starts": (today - timedelta(days=3)).isoformat(),
        "ends": (today + timedelta(days=3)).isoformat(),
    }
    docs: list[dict[str, Any]] = []
    for n in range(count):
        sku = rnd.choice(pool)
        one = {"skus": [sku]}
        some = {"skus": rnd.sample(list(pool), min(len(pool), 4))}
        category = {"categories": [category_of[sku]]}
        common: dict[str, Any] = {"id": f"P{n:04d}", "name": f"offer {n}", "window": week}
        shape = n % 20
        if shape < 8:
            doc = {
                "kind": "percent_off",
                "percent_bp": rnd.choice([500, 1000, 2000]),
                "target": one,
                "group": f"sku-{sku}",
            }
        elif shape < 11:
            doc = {
                "kind": "amount_off",
                "amount": rnd.choice([100, 200, 500]),
                "target": one,
                "group": f"sku-{sku}",
            }
        elif shape < 13:
            doc = {
                "kind": "member_price",
                "price": price_of[sku] * 9 // 10,
                "target": one,
                "members_only": True,
            }
        elif shape == 13:
            doc = {
                "kind": "member_price",
                "price": price_of[sku] * 7 // 10,
                "target": one,
                "per_member_limit": 2,
                "group": f"sku-{sku}",
            }
        elif shape == 14:
            doc = {"kind": "buy_x_get_y", "buy": 2, "get": 1, "percent_bp": 10_000, "target": some}
        elif shape == 15:
            doc = {"kind": "bundle", "size": 3, "price": 1_000, "target": some}
        elif shape == 16:
            doc = {
                "kind": "percent_off",
                "percent_bp": 1_500,
                "target": category,
                "tiers": ["gold"],
                "window": {**week, "opens": "17:00", "closes": "22:00"},
            }
        elif shape == 17:
            doc = {
                "kind": "threshold",
                "stage": "basket",
                "target": category,
                "steps": [{"min": 5_000, "off": 500}, {"min": 10_000, "off": 1_200}],
                "group": "basket",
            }
        elif shape == 18:
            doc = {
                "kind": "every",
                "stage": "basket",
                "every": 10_000,
                "amount": 1_000,
                "group": "basket",
            }
        else:
            doc = {
                "kind": "percent_off",
                "stage": "basket",
                "percent_bp": 500,
                "target": category,
                "min_spend": 20_000,
                "group": "basket",
            }
        docs.append({**common, **doc})
    return docs
