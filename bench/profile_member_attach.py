"""What attaching a member by code costs inside one process, next to a scan, with no server,
no other request and no network: the service call alone and the whole app (Flask's test
client: token check, JSON, the priced cart view it answers).

It tells what share of an attach's time under load (`make bench-member-checkout`, the
"member" column) is the attach's own work and what share is the request's trip through the
server beside other requests. Usage: ``python bench/profile_member_attach.py [--sales 400]``
(prints JSON: p50 and p99 in ms for each step).
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
from collections.abc import Callable
from functools import partial
from pathlib import Path
from statistics import median
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from edge.auth.service import Principal
from edge.checkout import carts
from edge.members.points import attach_member
from edge.members.service import sign_up
from sync.keys import generate_private_key, public_key_b64
from tests.builders import MILK, make_app_for, make_store


def _ms(samples: list[float]) -> dict[str, float]:
    ordered = sorted(samples)
    return {
        "p50": round(median(ordered) * 1e3, 3),
        "p99": round(ordered[int(len(ordered) * 0.99)] * 1e3, 3),
    }


def _timed(samples: list[float], call: Callable[[], Any]) -> Any:
    started = time.perf_counter()
    result = call()
    samples.append(time.perf_counter() - started)
    return result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--sales", type=int, default=400)
    args = parser.parse_args()
    store = make_store(Path(tempfile.mkdtemp()) / "S001")
    kiosk = Principal(store.devices["kiosk"], "kiosk")
    member, _ = sign_up(
        store.db,
        store.ctx.members_keyring,
        cloud_key=public_key_b64(generate_private_key()),
        store_id="S001",
        phone="13655550009",
        name=None,
        device_id=store.devices["kiosk"],
        recruited_by=None,
        region="CN",
        now=store.clock.now(),
    )
    now = store.clock.now
    assert member.code is not None
    steps: dict[str, list[float]] = {
        "service: scan": [],
        "service: attach": [],
        "app: scan": [],
        "app: attach": [],
    }
    for _ in range(args.sales):
        cart = carts.create_cart(store.db, kiosk, channel="kiosk", currency="CNY", now=now())
        for _ in range(5):
            _timed(
                steps["service: scan"],
                partial(
                    carts.add_line,
                    store.db,
                    kiosk,
                    cart.cart.id,
                    barcode=MILK["barcodes"],
                    quantity=None,
                    rules=store.ctx.scan_rules,
                    now=now(),
                ),
            )
        _timed(
            steps["service: attach"],
            partial(
                attach_member,
                store.db,
                store.ctx.members_keyring,
                None,
                kiosk,
                cart.cart.id,
                member.code,
                region="CN",
                now=now(),
            ),
        )
    client = make_app_for(store).test_client()
    headers = {"Authorization": f"Bearer {store.tokens['kiosk']}"}
    for _ in range(args.sales):
        cart_id = client.post(
            "/api/v1/carts", json={"channel": "kiosk"}, headers=headers
        ).get_json()["id"]
        for _ in range(5):
            answer = _timed(
                steps["app: scan"],
                partial(
                    client.post,
                    f"/api/v1/carts/{cart_id}/lines",
                    json={"barcode": MILK["barcodes"]},
                    headers=headers,
                ),
            )
            assert answer.status_code in (200, 201), answer.get_json()
        answer = _timed(
            steps["app: attach"],
            partial(
                client.put,
                f"/api/v1/carts/{cart_id}/member",
                json={"member_code": member.code},
                headers=headers,
            ),
        )
        assert answer.status_code == 200, answer.get_json()
    print(json.dumps({name: _ms(samples) for name, samples in steps.items()}, indent=2))


if __name__ == "__main__":
    main()
